/**
 * Bots: list, create, edit and delete bots and their guidelines, journeys, tools and tool
 * mappings. Forms validate before sending and show the server's field errors by the field.
 * Edits send the `version` they were made from: when someone else changed the record first
 * (409), the page says so and offers to reload; it never overwrites.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, ok } from '../api/client';
import { patchBody, type Bot, type BotPatch, type GuidelinePatch, type JourneyPatch, type Guideline, type Journey, type Tool, type ToolMapping } from '../api/types';
import { botsChanged, listBots, onBotsChanged } from '../data';
import { href, navigate } from '../router';
import { useSession } from '../session';
import { ConfirmButton, LoadError, useLoad, When } from '../ui/common';
import { Form, lines, optional, type FieldSpec, type FormValues } from '../ui/form';

const nonBlank = (label: string): [RegExp, string] => [/\S/, `${label} must not be blank`];

const botFields: FieldSpec[] = [
  { name: 'name', label: 'Name', required: true, max: 100, pattern: nonBlank('Name') },
  { name: 'description', label: 'Description', kind: 'textarea', max: 2000 },
  {
    name: 'composition_mode',
    label: 'Composition mode',
    kind: 'select',
    options: [
      ['fluid', 'fluid'],
      ['canned_fluid', 'canned_fluid'],
      ['composited_canned', 'composited_canned'],
      ['strict_canned', 'strict_canned'],
    ],
  },
  { name: 'max_engine_iterations', label: 'Max engine iterations', kind: 'number', min: 1, max: 10 },
];

const guidelineFields: FieldSpec[] = [
  { name: 'condition', label: 'When (condition)', kind: 'textarea', required: true, max: 1000, pattern: nonBlank('The condition'), placeholder: 'the user asks about refunds' },
  { name: 'action', label: 'Then (action)', kind: 'textarea', required: true, max: 2000, pattern: nonBlank('The action'), placeholder: 'explain the 30-day refund policy' },
  {
    name: 'criticality',
    label: 'Criticality',
    kind: 'select',
    options: [
      ['medium', 'medium'],
      ['low', 'low'],
      ['high', 'high'],
    ],
  },
  { name: 'enabled', label: 'Enabled', kind: 'checkbox' },
];

const journeyFields: FieldSpec[] = [
  { name: 'title', label: 'Title', required: true, max: 200, pattern: nonBlank('The title') },
  { name: 'conditions', label: 'Starts when (one condition per line)', kind: 'lines', required: true, max: 500 },
  { name: 'steps', label: 'Steps (one per line; add "| word, word" for the words that move it on)', kind: 'lines', max: 1200, serverFields: ['steps'] },
];

const toolFields: FieldSpec[] = [
  { name: 'name', label: 'Name', required: true, pattern: [/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/, 'Name: a letter or _, then letters, digits, _ or - (at most 64)'] },
  { name: 'description', label: 'Description', kind: 'textarea', max: 2000 },
  { name: 'url', label: 'Endpoint URL', required: true, max: 2000, pattern: [/^https?:\/\/\S+$/, 'Endpoint URL must start with http:// or https:// and have no spaces'], serverFields: ['endpoint'], placeholder: 'https://example.com/orders' },
  {
    name: 'method',
    label: 'Method',
    kind: 'select',
    options: [
      ['GET', 'GET'],
      ['POST', 'POST'],
    ],
  },
];

/** Journey steps as edited (one per line, `instruction | word, word`) → API shape. */
function parseSteps(value: string | boolean | undefined) {
  return lines(value).map((line) => {
    const [instruction, words] = line.split('|');
    const advance = (words ?? '')
      .split(',')
      .map((w) => w.trim())
      .filter(Boolean);
    return { instruction: instruction!.trim(), ...(advance.length ? { advance_when: advance } : {}) };
  });
}

function formatSteps(steps: Journey['steps']): string {
  return steps
    .map((s) => {
      const step = s as { instruction?: string; advance_when?: string[] };
      return `${step.instruction ?? ''}${step.advance_when?.length ? ` | ${step.advance_when.join(', ')}` : ''}`;
    })
    .join('\n');
}

/** Shown when a save lost the version race. */
function Conflict({ what, onReload }: { what: string; onReload: () => void }) {
  return (
    <div class="notice notice-warn" role="alert" data-testid="conflict">
      <strong>Not saved: someone else changed this {what} after you opened it.</strong> Your edit would have overwritten their change.{' '}
      <button onClick={onReload}>Reload the latest version</button>
    </div>
  );
}

function BotList() {
  const session = useSession();
  const bots = useLoad(listBots, []);
  useEffect(() => onBotsChanged(() => void bots.reload()), [bots.reload]);
  const [creating, setCreating] = useState(false);
  const canWrite = session.can('bots:write');
  return (
    <section aria-labelledby="bots-title">
      <div class="section-head">
        <h1 id="bots-title">Bots</h1>
        {canWrite && !creating ? (
          <button class="primary" onClick={() => setCreating(true)}>
            New bot
          </button>
        ) : null}
      </div>
      {creating ? (
        <div class="card">
          <h2>New bot</h2>
          <Form
            label="New bot"
            fields={botFields.slice(0, 2)}
            initial={{ name: '', description: '' }}
            submitLabel="Create bot"
            onCancel={() => setCreating(false)}
            onSubmit={async (v) => {
              const bot = await ok(api.POST('/bots', { body: { name: String(v.name).trim(), description: String(v.description ?? '') } }));
              botsChanged();
              navigate(href('bots', bot.id));
            }}
          />
        </div>
      ) : null}
      {bots.error ? <LoadError error={bots.error} retry={bots.reload} /> : null}
      <ul class="cards" data-testid="bots">
        {(bots.data ?? []).map((bot) => (
          <li key={bot.id} class="card">
            <a href={href('bots', bot.id)}>
              <strong>{bot.name}</strong>
            </a>
            {bot.built_in ? <span class="tag">built-in bot-builder</span> : null}
            <p class="muted">{bot.description || 'No description'}</p>
            <a href={href('chat', bot.id)}>Chat with {bot.name}</a>
          </li>
        ))}
      </ul>
    </section>
  );
}

function botValues(bot: Bot): FormValues {
  return { name: bot.name, description: bot.description ?? '', composition_mode: bot.composition_mode ?? 'fluid', max_engine_iterations: String(bot.max_engine_iterations ?? '') };
}

function BotEditor({ bot, onSaved, onReload }: { bot: Bot; onSaved: (b: Bot) => void; onReload: () => Promise<void> }) {
  const [conflict, setConflict] = useState(false);
  const [formKey, setFormKey] = useState(0);
  const canWrite = useSession().can('bots:write') && !bot.built_in;
  return (
    <div class="card">
      <h2>Settings</h2>
      {conflict ? (
        <Conflict
          what="bot"
          onReload={async () => {
            await onReload();
            setConflict(false);
            setFormKey((k) => k + 1);
          }}
        />
      ) : null}
      <Form
        key={`${bot.id}-${formKey}`}
        label="Bot settings"
        fields={botFields}
        initial={botValues(bot)}
        submitLabel="Save"
        disabled={!canWrite}
        onError={(e) => {
          if (e.status === 409 && e.code === 'CONFLICT') return setConflict(true), true;
          return false;
        }}
        onSubmit={async (v) => {
          const saved = await ok(
            api.PATCH('/bots/{id}', {
              params: { path: { id: bot.id } },
              body: patchBody<BotPatch>({
                version: bot.version,
                name: String(v.name).trim(),
                description: String(v.description ?? ''),
                composition_mode: v.composition_mode as 'fluid',
                ...(optional(v.max_engine_iterations) ? { max_engine_iterations: Number(v.max_engine_iterations) } : {}),
              }),
            }),
          );
          setConflict(false);
          onSaved(saved);
          botsChanged();
        }}
      >
        <p class="muted small">
          Version {bot.version}, last changed <When at={bot.updated_at} />
        </p>
      </Form>
      {canWrite ? (
        <ConfirmButton
          label="Delete bot"
          question={`Delete ${bot.name} with its guidelines, journeys and tools? Conversations stay.`}
          confirmLabel="Yes, delete"
          action={async () => {
            try {
              await ok(api.DELETE('/bots/{id}', { params: { path: { id: bot.id }, query: { version: bot.version } } }));
            } catch (e) {
              if (e instanceof ApiError && e.status === 409) {
                setConflict(true);
                throw new ApiError(409, 'CONFLICT', 'Not deleted: the bot changed since you opened it. Reload and decide again.');
              }
              throw e;
            }
            botsChanged();
            navigate(href('bots'));
          }}
        />
      ) : null}
    </div>
  );
}

/** One editable guideline. */
function GuidelineItem({ bot, item, canWrite, reload }: { bot: Bot; item: Guideline; canWrite: boolean; reload: () => Promise<void> }) {
  const [editing, setEditing] = useState(false);
  const [conflict, setConflict] = useState(false);
  return (
    <li class="item">
      {editing ? (
        <>
          {conflict ? <Conflict what="guideline" onReload={async () => (await reload(), setConflict(false), setEditing(false))} /> : null}
          <Form
            label="Edit guideline"
            fields={guidelineFields}
            initial={{ condition: item.condition, action: item.action, criticality: item.criticality, enabled: item.enabled }}
            submitLabel="Save guideline"
            onCancel={() => setEditing(false)}
            onError={(e) => (e.status === 409 && e.code === 'CONFLICT' ? (setConflict(true), true) : false)}
            onSubmit={async (v) => {
              await ok(
                api.PATCH('/bots/{id}/guidelines/{child_id}', {
                  params: { path: { id: bot.id, child_id: item.id } },
                  body: patchBody<GuidelinePatch>({ version: item.version, condition: String(v.condition).trim(), action: String(v.action).trim(), criticality: v.criticality as 'medium', enabled: v.enabled === true }),
                }),
              );
              setEditing(false);
              await reload();
            }}
          />
        </>
      ) : (
        <>
          <p>
            <span class="muted">When</span> {item.condition} <span class="muted">then</span> {item.action}
          </p>
          <p class="small muted">
            {item.criticality} criticality · {item.enabled ? 'enabled' : 'disabled'} · id {item.id}
          </p>
          {canWrite ? (
            <div class="actions">
              <button onClick={() => setEditing(true)} aria-label={`Edit guideline: ${item.condition}`}>
                Edit
              </button>
              <ConfirmButton
                label="Delete"
                question="Delete this guideline and its tool mappings?"
                action={async () => {
                  await ok(api.DELETE('/bots/{id}/guidelines/{child_id}', { params: { path: { id: bot.id, child_id: item.id } } }));
                  await reload();
                }}
              />
            </div>
          ) : null}
        </>
      )}
    </li>
  );
}

function JourneyItem({ bot, item, canWrite, reload }: { bot: Bot; item: Journey; canWrite: boolean; reload: () => Promise<void> }) {
  const [editing, setEditing] = useState(false);
  const [conflict, setConflict] = useState(false);
  return (
    <li class="item">
      {editing ? (
        <>
          {conflict ? <Conflict what="journey" onReload={async () => (await reload(), setConflict(false), setEditing(false))} /> : null}
          <Form
            label="Edit journey"
            fields={journeyFields}
            initial={{ title: item.title, conditions: item.conditions.join('\n'), steps: formatSteps(item.steps) }}
            submitLabel="Save journey"
            onCancel={() => setEditing(false)}
            onError={(e) => (e.status === 409 && e.code === 'CONFLICT' ? (setConflict(true), true) : false)}
            onSubmit={async (v) => {
              await ok(
                api.PATCH('/bots/{id}/journeys/{child_id}', {
                  params: { path: { id: bot.id, child_id: item.id } },
                  body: patchBody<JourneyPatch>({ version: item.version, title: String(v.title).trim(), conditions: lines(v.conditions), steps: parseSteps(v.steps) }),
                }),
              );
              setEditing(false);
              await reload();
            }}
          />
        </>
      ) : (
        <>
          <p>
            <strong>{item.title}</strong> <span class="muted">starts when</span> {item.conditions.join('; ')}
          </p>
          {item.steps.length ? (
            <ol class="small">
              {formatSteps(item.steps)
                .split('\n')
                .map((s, i) => (
                  <li key={i}>{s}</li>
                ))}
            </ol>
          ) : null}
          {canWrite ? (
            <div class="actions">
              <button onClick={() => setEditing(true)} aria-label={`Edit journey ${item.title}`}>
                Edit
              </button>
              <ConfirmButton
                label="Delete"
                question={`Delete the journey ${item.title}?`}
                action={async () => {
                  await ok(api.DELETE('/bots/{id}/journeys/{child_id}', { params: { path: { id: bot.id, child_id: item.id } } }));
                  await reload();
                }}
              />
            </div>
          ) : null}
        </>
      )}
    </li>
  );
}

interface Definitions {
  guidelines: Guideline[];
  journeys: Journey[];
  tools: Tool[];
  mappings: ToolMapping[];
}

async function loadDefinitions(id: string): Promise<Definitions> {
  const path = { params: { path: { id }, query: { limit: 1000 } } };
  const [g, j, t, m] = await Promise.all([
    ok(api.GET('/bots/{id}/guidelines', path)),
    ok(api.GET('/bots/{id}/journeys', path)),
    ok(api.GET('/bots/{id}/tools', path)),
    ok(api.GET('/bots/{id}/tool-mappings', path)),
  ]);
  return { guidelines: g.items, journeys: j.items, tools: t.items, mappings: m.items };
}

function BotDetail({ id }: { id: string }) {
  const session = useSession();
  const bot = useLoad(() => ok(api.GET('/bots/{id}', { params: { path: { id } } })), [id]);
  const defs = useLoad(() => (id === 'otto' ? Promise.resolve({ guidelines: [], journeys: [], tools: [], mappings: [] }) : loadDefinitions(id)), [id]);
  const [adding, setAdding] = useState<'guideline' | 'journey' | 'tool' | 'mapping' | null>(null);
  if (bot.error) return <LoadError error={bot.error} retry={bot.reload} />;
  if (!bot.data) return <p class="loading">Loading…</p>;
  const b = bot.data;
  const canWrite = session.can('bots:write') && !b.built_in;
  const d = defs.data;
  const guidelineName = (gid: string) => d?.guidelines.find((g) => g.id === gid)?.condition ?? gid;

  return (
    <section aria-labelledby="bot-title">
      <p>
        <a href={href('bots')}>← All bots</a>
      </p>
      <div class="section-head">
        <h1 id="bot-title">{b.name}</h1>
        <a class="button" href={href('chat', b.id)}>
          Chat with {b.name}
        </a>
      </div>
      {b.built_in ? <p class="notice">Otto is the built-in bot-builder: it cannot be changed or deleted. Chat with it to build bots.</p> : null}
      <BotEditor bot={b} onSaved={bot.set} onReload={bot.reload} />
      {b.built_in ? null : (
        <>
          {defs.error ? <LoadError error={defs.error} retry={defs.reload} /> : null}
          <div class="card">
            <div class="section-head">
              <h2>Guidelines ({d?.guidelines.length ?? 0})</h2>
              {canWrite && adding !== 'guideline' ? <button onClick={() => setAdding('guideline')}>Add guideline</button> : null}
            </div>
            {adding === 'guideline' ? (
              <Form
                label="New guideline"
                fields={guidelineFields}
                initial={{ condition: '', action: '', criticality: 'medium', enabled: true }}
                submitLabel="Add guideline"
                onCancel={() => setAdding(null)}
                onSubmit={async (v) => {
                  await ok(api.POST('/bots/{id}/guidelines', { params: { path: { id } }, body: { condition: String(v.condition).trim(), action: String(v.action).trim(), criticality: v.criticality as 'medium', enabled: v.enabled === true } }));
                  setAdding(null);
                  await defs.reload();
                }}
              />
            ) : null}
            <ul class="items">
              {d?.guidelines.map((g) => <GuidelineItem key={`${g.id}-${g.version}`} bot={b} item={g} canWrite={canWrite} reload={defs.reload} />)}
            </ul>
          </div>
          <div class="card">
            <div class="section-head">
              <h2>Journeys ({d?.journeys.length ?? 0})</h2>
              {canWrite && adding !== 'journey' ? <button onClick={() => setAdding('journey')}>Add journey</button> : null}
            </div>
            {adding === 'journey' ? (
              <Form
                label="New journey"
                fields={journeyFields}
                initial={{ title: '', conditions: '', steps: '' }}
                submitLabel="Add journey"
                onCancel={() => setAdding(null)}
                onSubmit={async (v) => {
                  await ok(api.POST('/bots/{id}/journeys', { params: { path: { id } }, body: { title: String(v.title).trim(), conditions: lines(v.conditions), steps: parseSteps(v.steps) } }));
                  setAdding(null);
                  await defs.reload();
                }}
              />
            ) : null}
            <ul class="items">
              {d?.journeys.map((j) => <JourneyItem key={`${j.id}-${j.version}`} bot={b} item={j} canWrite={canWrite} reload={defs.reload} />)}
            </ul>
          </div>
          <div class="card">
            <div class="section-head">
              <h2>Tools ({d?.tools.length ?? 0})</h2>
              {canWrite && adding !== 'tool' ? <button onClick={() => setAdding('tool')}>Add tool</button> : null}
            </div>
            {adding === 'tool' ? (
              <Form
                label="New tool"
                fields={toolFields}
                initial={{ name: '', description: '', url: '', method: 'GET' }}
                submitLabel="Add tool"
                onCancel={() => setAdding(null)}
                onSubmit={async (v) => {
                  await ok(api.POST('/bots/{id}/tools', { params: { path: { id } }, body: { name: String(v.name).trim(), description: String(v.description ?? ''), endpoint: { url: String(v.url).trim(), method: v.method as 'GET' } } }));
                  setAdding(null);
                  await defs.reload();
                }}
              />
            ) : null}
            <ul class="items">
              {d?.tools.map((t) => (
                <li class="item" key={t.id}>
                  <p>
                    <code>{t.name}</code> {String((t.endpoint as { method?: string }).method ?? 'GET')} {String((t.endpoint as { url?: string }).url ?? '')}
                  </p>
                  {t.description ? <p class="small muted">{t.description}</p> : null}
                  {canWrite ? (
                    <ConfirmButton
                      label="Delete"
                      question={`Delete the tool ${t.name} and its mappings?`}
                      action={async () => {
                        await ok(api.DELETE('/bots/{id}/tools/{child_id}', { params: { path: { id, child_id: t.id } } }));
                        await defs.reload();
                      }}
                    />
                  ) : null}
                </li>
              ))}
            </ul>
          </div>
          <div class="card">
            <div class="section-head">
              <h2>Tool mappings ({d?.mappings.length ?? 0})</h2>
              {canWrite && adding !== 'mapping' && d && d.tools.length > 0 && d.guidelines.length > 0 ? <button onClick={() => setAdding('mapping')}>Map a tool</button> : null}
            </div>
            <p class="small muted">A mapped tool runs when its guideline matches.</p>
            {adding === 'mapping' && d ? (
              <Form
                label="New tool mapping"
                fields={[
                  { name: 'guideline_id', label: 'When this guideline matches', kind: 'select', required: true, options: d.guidelines.map((g) => [g.id, g.condition]) },
                  { name: 'tool_name', label: 'call this tool', kind: 'select', required: true, options: d.tools.map((t) => [t.name, t.name]) },
                ]}
                initial={{ guideline_id: d.guidelines[0]?.id ?? '', tool_name: d.tools[0]?.name ?? '' }}
                submitLabel="Map tool"
                onCancel={() => setAdding(null)}
                onSubmit={async (v) => {
                  await ok(api.POST('/bots/{id}/tool-mappings', { params: { path: { id } }, body: { guideline_id: String(v.guideline_id), tool_name: String(v.tool_name) } }));
                  setAdding(null);
                  await defs.reload();
                }}
              />
            ) : null}
            <ul class="items">
              {d?.mappings.map((m) => (
                <li class="item" key={m.id}>
                  <p>
                    When <em>{guidelineName(m.guideline_id)}</em> → call <code>{m.tool_name}</code>
                  </p>
                  {canWrite ? (
                    <ConfirmButton
                      label="Remove"
                      question="Remove this mapping?"
                      action={async () => {
                        await ok(api.DELETE('/bots/{id}/tool-mappings/{child_id}', { params: { path: { id, child_id: m.id } } }));
                        await defs.reload();
                      }}
                    />
                  ) : null}
                </li>
              ))}
            </ul>
          </div>
        </>
      )}
    </section>
  );
}

/** `#/bots` and `#/bots/<id>`. */
export function BotsView({ route }: { route: string[] }) {
  return route[0] ? <BotDetail id={route[0]} /> : <BotList />;
}
