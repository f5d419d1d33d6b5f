/**
 * Text normalisation for lexical matching: lower-casing, accent folding, contractions,
 * tokenisation, stop words and a small deterministic suffix stemmer.
 */

/** Words that carry no intent: grammar words plus the framing of guideline conditions ("the user asks about …"). */
export const stopWords: ReadonlySet<string> = new Set(
  (
    'a an the and or but nor so if then than else of to in on at by for with from into onto over under about ' +
    'as is am are was were be been being do does did doing done have has had having can could would should shall will may might must ' +
    'i me my mine myself we us our ours you your yours yourself he him his she her hers it its itself they them their theirs ' +
    'this that these those there here what which who whom whose how when where why whether ' +
    'not no dont doesnt didnt cant cannot wont isnt arent im ive id youre its lets ' +
    'very really just also too some any all each every either neither both much many more most own same such only ' +
    'get got gets getting go going goes went please pls plz ok okay well still even ever again ' +
    'user users customer customers client clients visitor visitors ' +
    'ask asks asked asking question questions inquire inquires inquiry enquire enquires enquiry ' +
    'want wants wanted wanting wanna like need needs needed say says said saying mention mentions mentioned ' +
    'tell tells told talk talks talking speak speaks speaking know knows wonder wondering regarding re something thing things stuff way ways kind sort'
  )
    .split(/\s+/)
    .filter(Boolean),
);

const CONTRACTIONS: Array<[RegExp, string]> = [
  [/\bcan['’]t\b/g, 'can not'],
  [/\bwon['’]t\b/g, 'will not'],
  [/n['’]t\b/g, ' not'],
  [/['’](re|ve|ll|d|m|s)\b/g, ''],
  [/['’]/g, ''],
];

/** Lower-cases, folds accents and expands contractions ("can't" → "can not"). */
export function normalize(text: string): string {
  let out = text.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
  for (const [pattern, replacement] of CONTRACTIONS) out = out.replace(pattern, replacement);
  return out;
}

/** Only this many words of a text are analysed (bounds matching work on huge messages). */
export const MAX_WORDS = 2000;

/** The first MAX_WORDS words of `text`, normalised, in order (letters and digits only). */
export function words(text: string): string[] {
  return (normalize(text.length > MAX_WORDS * 24 ? text.slice(0, MAX_WORDS * 24) : text).match(/[a-z0-9]+/g) ?? []).slice(0, MAX_WORDS);
}

function undouble(word: string): string {
  const last = word.at(-1);
  if (word.length >= 5 && last === word.at(-2) && last !== 's' && /[bcdfgklmnprtvz]/.test(last ?? '')) return word.slice(0, -1);
  return word;
}

/**
 * A light, deterministic suffix stemmer: refunds → refund, asking → ask, shipped → ship,
 * policies → policy, cancellation → cancel, price/pricing → pric. Both sides of every
 * comparison go through it, so consistency matters more than linguistic accuracy.
 */
export function stem(word: string): string {
  let w = word;
  if (w.length <= 3 || /^\d+$/.test(w)) return w;
  if (w.endsWith('ies') && w.length > 4) w = `${w.slice(0, -3)}y`;
  else if (w.endsWith('sses')) w = w.slice(0, -2);
  else if (/(xes|ches|shes|zes)$/.test(w)) w = w.slice(0, -2);
  else if (w.endsWith('s') && !/(ss|us|is)$/.test(w)) w = w.slice(0, -1);

  if (w.endsWith('ied') && w.length > 4) w = `${w.slice(0, -3)}y`;
  else if (w.endsWith('ing') && w.length - 3 >= 3) w = undouble(w.slice(0, -3));
  else if (w.endsWith('ed') && w.length - 2 >= 3) w = undouble(w.slice(0, -2));

  if (w.endsWith('ation') && w.length - 5 >= 3) w = undouble(w.slice(0, -5));
  else if (w.endsWith('ment') && w.length - 4 >= 3) w = w.slice(0, -4);
  else if (w.endsWith('ly') && w.length - 2 >= 4) w = w.slice(0, -2);

  if (w.endsWith('e') && w.length - 1 >= 3) w = w.slice(0, -1);
  return w;
}

/** A text analysed for matching. */
export interface Analyzed {
  /** Stems of every word, stop words included, in order. */
  all: string[];
  /** Stems of the content words (stop words removed), in order. */
  content: string[];
  /** For each position of `all`: its position in `content`, or -1 for a stop word. */
  contentIndex: number[];
}

/** Tokenises and stems `text`, keeping both the full and the content-word sequences. */
export function analyze(text: string): Analyzed {
  const all: string[] = [];
  const content: string[] = [];
  const contentIndex: number[] = [];
  for (const word of words(text)) {
    const stemmed = stem(word);
    all.push(stemmed);
    if (stopWords.has(word)) contentIndex.push(-1);
    else contentIndex.push(content.push(stemmed) - 1);
  }
  return { all, content, contentIndex };
}
