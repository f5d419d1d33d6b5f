/** Outgoing webhooks: subscriptions, the change-log-fed outbox, the dispatcher and signatures. */
export { WEBHOOK_EVENTS, WebhookService, type WebhookConfig, type WebhookEvent, type WebhookInput, type WebhookPatch, type WebhookView } from './webhook-configs.ts';
export { OUTBOX_CURSOR_URL, startOutbox, type WebhookDelivery } from './outbox.ts';
export { WebhookDispatcher, retryDelay, type DispatcherOptions } from './dispatcher.ts';
export { signWebhook, verifyWebhookSignature } from './signing.ts';
export { listDeliveries } from './deliveries.ts';
