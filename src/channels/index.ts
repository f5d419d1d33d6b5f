/** Channels: Telegram and Slack accounts of bots, and their inbound traffic. */
export { ChannelService, PLATFORMS, SLACK_TOLERANCE_S, verifySlackSignature, type ChannelInput, type InboundResult, type Platform, type PlatformAccount, type PlatformAccountView } from './channel-service.ts';
export { createSlackApi, createTelegramApi, type SlackApi, type TelegramApi } from './platform-api.ts';
