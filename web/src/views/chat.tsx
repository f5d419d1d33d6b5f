/**
 * Chat: pick a bot (Otto, the bot-builder, comes first), start or reopen a conversation, send
 * messages; replies and messages from other clients arrive live over server-sent events. Older
 * messages load by page; each reply shows how it was made (agent steps) on demand.
 */
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, followEvents, ok } from '../api/client';
import type { AgentStep, Bot, Conversation, Message } from '../api/types';
import { botsChanged, listBots, onBotsChanged } from '../data';
import { href, navigate } from '../router';
import { LoadError, useLoad, When } from '../ui/common';

const PAGE = 50;
const BUILDER = 'otto';

const EXAMPLES = [
  'Create a bot called Helper that answers questions about orders',
  'Add a guideline to Helper: when the user asks about refunds, explain the 30-day policy',
  'List my bots',
  'help',
];

/** Sorted, de-duplicated by offset (the same message may come from the POST and the stream). */
function merge(current: Message[], incoming: Message[]): Message[] {
  const byOffset = new Map(current.map((m) => [m.offset, m]));
  for (const m of incoming) byOffset.set(m.offset, m);
  return [...byOffset.values()].sort((a, b) => a.offset - b.offset);
}

function describeStep(step: AgentStep): string {
  const s = step as Record<string, unknown>;
  const text = (v: unknown) => (v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v));
  switch (step.type) {
    case 'guideline_matched':
      return `Guideline matched (score ${text(s.score)}): when ${text(s.condition)} → ${text(s.action)}`;
    case 'journey_step':
      return `Journey "${text(s.title)}", step ${Number(s.step) + 1}: ${text(s.instruction)}`;
    case 'tool_called':
      return `Tool ${text(s.tool_name)} ${s.ok ? 'ran' : 'failed'}${s.status ? ` (HTTP ${text(s.status)})` : ''} in ${text(s.duration_ms)} ms${s.error ? `: ${text(s.error)}` : ''}`;
    case 'provider':
      return `Model ${text(s.provider)}/${text(s.model)} answered in ${text(s.duration_ms)} ms${s.tokens_in !== undefined ? `, ${text(s.tokens_in)} tokens in / ${text(s.tokens_out)} out` : ''}`;
    case 'builder_action':
      return `Builder ${text(s.action)}${s.target ? ` ${text(s.target)}` : ''}: ${s.ok ? 'done' : 'not done'}${s.detail ? ` (${text(s.detail)})` : ''}`;
    case 'error':
      return `Error ${text(s.code)}: ${text(s.message)}`;
    default:
      return `${step.type}: ${JSON.stringify(step)}`;
  }
}

function MessageItem({ message, botName }: { message: Message; botName: string }) {
  const steps = (message.agent_steps ?? []) as AgentStep[];
  const who = message.role === 'user' ? 'You' : message.role === 'assistant' ? botName : 'System';
  return (
    <article class={`msg msg-${message.role}`} aria-label={`${who}, message ${message.offset}`} data-offset={message.offset}>
      <header class="msg-head">
        <span class="msg-who">{who}</span> <When at={message.created_at} />
      </header>
      <p class="msg-text">{message.content}</p>
      {steps.length > 0 ? (
        <details class="steps">
          <summary>How this reply was made ({steps.length} {steps.length === 1 ? 'step' : 'steps'})</summary>
          <ol>
            {steps.map((step, i) => (
              <li key={i} class={`step step-${step.type}`}>
                {describeStep(step)}
              </li>
            ))}
          </ol>
        </details>
      ) : null}
    </article>
  );
}

interface ThreadProps {
  bot: Bot;
  conversationId: string | undefined;
  onConversationChanged: () => void;
}

function Thread({ bot, conversationId, onConversationChanged }: ThreadProps) {
  const [messages, setMessages] = useState<Message[]>([]);
  const [olderBefore, setOlderBefore] = useState<number | null>(null);
  const [loadError, setLoadError] = useState<ApiError>();
  const [sendError, setSendError] = useState<string>();
  const [draft, setDraft] = useState('');
  const [sending, setSending] = useState(false);
  const [live, setLive] = useState<'open' | 'retrying' | 'off'>('off');
  const [loading, setLoading] = useState(false);
  const logRef = useRef<HTMLDivElement>(null);
  const inputRef = useRef<HTMLTextAreaElement>(null);
  const stick = useRef(true);
  const keepFromBottom = useRef<number | null>(null);
  const isBuilder = bot.id === BUILDER;

  // Load the latest page, then follow the event stream from there.
  useEffect(() => {
    setLoadError(undefined);
    if (!conversationId) {
      setMessages([]);
      setOlderBefore(null);
      setLive('off');
      return;
    }
    let stop: (() => void) | undefined;
    let cancelled = false;
    setMessages((current) => (current[0]?.conversation_id === conversationId ? current : []));
    setLoading(true);
    ok(api.GET('/conversations/{id}', { params: { path: { id: conversationId }, query: { limit: PAGE } } }))
      .then((data) => {
        if (cancelled) return;
        const items = data.messages.items;
        setMessages((current) => merge(current[0]?.conversation_id === conversationId ? current : [], items));
        setOlderBefore(data.messages.older_before);
        stick.current = true;
        const last = items.length ? items[items.length - 1]!.offset : 0;
        stop = followEvents({
          path: `/conversations/${encodeURIComponent(conversationId)}/events`,
          lastEventId: String(last),
          onState: setLive,
          onEvent: (event) => {
            if (event.event !== 'message') return;
            const message = JSON.parse(event.data) as Message;
            setMessages((current) => merge(current, [message]));
            if (isBuilder && message.role === 'assistant') botsChanged();
          },
        });
      })
      .catch((error: ApiError) => !cancelled && setLoadError(error))
      .finally(() => !cancelled && setLoading(false));
    return () => {
      cancelled = true;
      stop?.();
      setLive('off');
    };
  }, [conversationId]);

  // Stay at the bottom when new messages arrive (unless the reader scrolled up); keep the
  // reader's place when an older page is put on top.
  useLayoutEffect(() => {
    const log = logRef.current;
    if (!log) return;
    if (keepFromBottom.current !== null) {
      log.scrollTop = log.scrollHeight - keepFromBottom.current;
      keepFromBottom.current = null;
    } else if (stick.current) log.scrollTop = log.scrollHeight;
  }, [messages]);

  const loadOlder = async () => {
    if (!conversationId || olderBefore === null) return;
    try {
      const page = await ok(api.GET('/conversations/{id}/messages', { params: { path: { id: conversationId }, query: { before: olderBefore, limit: PAGE } } }));
      const log = logRef.current;
      if (log) keepFromBottom.current = log.scrollHeight - log.scrollTop;
      setMessages((current) => merge(current, page.items));
      setOlderBefore(page.older_before);
    } catch (error) {
      setLoadError(error as ApiError);
    }
  };

  const send = async (event?: Event) => {
    event?.preventDefault();
    const content = draft.trim();
    if (!content) {
      setSendError('Write a message first');
      inputRef.current?.focus();
      return;
    }
    setSending(true);
    setSendError(undefined);
    stick.current = true;
    try {
      let id = conversationId;
      if (!id) {
        const conversation = await ok(api.POST('/conversations', { body: { bot_id: bot.id } }));
        id = conversation.id;
      }
      const result = await ok(api.POST('/conversations/{id}/messages', { params: { path: { id } }, body: { content } }));
      setDraft('');
      setMessages((current) => merge(current[0]?.conversation_id === id ? current : [], [result.message, result.reply]));
      if (isBuilder) botsChanged();
      onConversationChanged();
      if (!conversationId) navigate(href('chat', bot.id, id), true);
    } catch (error) {
      setSendError((error as Error).message);
    } finally {
      setSending(false);
      inputRef.current?.focus();
    }
  };

  return (
    <section class="thread" aria-label={`Conversation with ${bot.name}`}>
      <header class="thread-head">
        <h2>
          {isBuilder ? 'Otto, the bot-builder' : bot.name}
          {conversationId ? null : <span class="tag">new conversation</span>}
        </h2>
        {conversationId ? (
          <span class={`live live-${live}`} aria-live="polite">
            {live === 'open' ? 'live' : live === 'retrying' ? 'reconnecting…' : ''}
          </span>
        ) : null}
      </header>
      {loadError ? <LoadError error={loadError} /> : null}
      <div class="log" ref={logRef} role="log" aria-live="polite" aria-label="Messages" tabIndex={0} onScroll={(e) => {
        const el = e.currentTarget;
        stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
      }}>
        {olderBefore !== null ? (
          <button class="older" onClick={loadOlder}>
            Load older messages
          </button>
        ) : null}
        {messages.length === 0 && !loading ? (
          <div class="empty">
            {isBuilder ? (
              <>
                <p>Tell Otto what bot you want. For example:</p>
                <ul class="examples">
                  {EXAMPLES.map((text) => (
                    <li key={text}>
                      <button class="link" onClick={() => (setDraft(text), inputRef.current?.focus())}>
                        {text}
                      </button>
                    </li>
                  ))}
                </ul>
              </>
            ) : (
              <p>No messages yet. Say hello to {bot.name}.</p>
            )}
          </div>
        ) : null}
        {messages.map((m) => (
          <MessageItem key={m.offset} message={m} botName={isBuilder ? 'Otto' : bot.name} />
        ))}
        {sending ? (
          <p class="typing" aria-live="polite">
            {isBuilder ? 'Otto' : bot.name} is replying…
          </p>
        ) : null}
      </div>
      <form class="composer" onSubmit={send}>
        <label for="composer-input" class="visually-hidden">
          Message to {isBuilder ? 'Otto' : bot.name}
        </label>
        <textarea
          id="composer-input"
          ref={inputRef}
          rows={2}
          value={draft}
          placeholder={isBuilder ? 'e.g. Create a bot called Helper' : `Message ${bot.name}`}
          aria-describedby={sendError ? 'composer-error' : 'composer-hint'}
          aria-invalid={sendError ? 'true' : undefined}
          onInput={(e) => setDraft(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) void send(e);
          }}
        />
        <button type="submit" class="primary" disabled={sending}>
          Send
        </button>
        <small id="composer-hint" class="hint">
          Enter sends, Shift+Enter starts a new line.
        </small>
        {sendError ? (
          <small id="composer-error" class="field-error" role="alert">
            {sendError}
          </small>
        ) : null}
      </form>
    </section>
  );
}

/** The chat view: `#/chat/<bot id>/<conversation id>`. */
export function ChatView({ route }: { route: string[] }) {
  const botId = route[0] ?? BUILDER;
  const conversationId = route[1];
  const bots = useLoad(listBots, []);
  useEffect(() => onBotsChanged(() => void bots.reload()), [bots.reload]);
  const conversations = useLoad(
    async () => (await ok(api.GET('/conversations', { params: { query: { bot_id: botId, limit: 50, order: 'recent' } } }))).items as Conversation[],
    [botId],
  );
  const bot = bots.data?.find((b) => b.id === botId);
  // On a phone the list folds away behind a button, so the conversation gets the screen.
  const [sideOpen, setSideOpen] = useState(false);
  useEffect(() => setSideOpen(false), [botId, conversationId]);

  return (
    <div class="chat-layout">
      <button class="side-toggle" aria-expanded={sideOpen} aria-controls="chat-side" onClick={() => setSideOpen(!sideOpen)}>
        {sideOpen ? 'Hide bots and conversations' : `Bots and conversations (${bot?.name ?? botId})`}
      </button>
      <aside id="chat-side" class={`chat-side${sideOpen ? '' : ' folded'}`} aria-label="Bots and conversations">
        <h2 id="chat-bots">Bots</h2>
        {bots.error ? <LoadError error={bots.error} retry={bots.reload} /> : null}
        <ul class="pick" aria-labelledby="chat-bots" data-testid="bot-list">
          {(bots.data ?? []).map((b) => (
            <li key={b.id}>
              <a href={href('chat', b.id)} aria-current={b.id === botId ? 'true' : undefined}>
                {b.name}
                {b.built_in ? <span class="tag">bot-builder</span> : null}
              </a>
            </li>
          ))}
        </ul>
        <h2 id="chat-conversations">Conversations</h2>
        <a class="button" href={href('chat', botId)}>
          New conversation
        </a>
        {conversations.error ? <LoadError error={conversations.error} retry={conversations.reload} /> : null}
        <ul class="pick" aria-labelledby="chat-conversations" data-testid="conversation-list">
          {(conversations.data ?? []).map((c) => (
            <li key={c.id}>
              <a href={href('chat', botId, c.id)} aria-current={c.id === conversationId ? 'true' : undefined}>
                {c.title || `Conversation of ${new Date(c.created_at).toLocaleString()}`}
                <small> · {c.last_offset} messages</small>
              </a>
            </li>
          ))}
          {conversations.data?.length === 0 ? <li class="muted">None yet</li> : null}
        </ul>
      </aside>
      {bot ? (
        <Thread bot={bot} conversationId={conversationId} onConversationChanged={() => void conversations.reload()} />
      ) : bots.loading ? (
        <p class="loading">Loading…</p>
      ) : (
        <p role="alert">That bot does not exist (or you may not see it). Pick one from the list.</p>
      )}
    </div>
  );
}
