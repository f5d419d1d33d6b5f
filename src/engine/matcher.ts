/**
 * Lexical matching of conditions ("the user asks about refunds") against a message
 * ("can I get my money back?"): stemmed content words, a concept table of support intents,
 * concept phrases and word bigrams, scored as the weighted share of the condition covered.
 * Pure and deterministic: the same inputs always give the same scores and order.
 */
import type { Criticality, Guideline } from '../domain/entities.ts';
import { concepts, findPhrases } from './text/concepts.ts';
import { analyze } from './text/tokenize.ts';

/** Scores at or above this match. */
export const MATCH_THRESHOLD = 0.4;

/** Credit for a condition word found in the message only through a shared concept. */
const CONCEPT_CREDIT = 0.9;
/** Credit for a condition word that is a prefix of a message word or the reverse (refund ~ refundable). */
const PREFIX_CREDIT = 0.8;
/** Weight of condition words that belong to a known intent, relative to plain words (1). */
const INTENT_WEIGHT = 1.5;
/** Share of the score given by the condition's word bigrams found in the message (phrase precision). */
const BIGRAM_SHARE = 0.1;

interface Unit {
  terms: string[];
  concepts: readonly string[];
}

/** A condition prepared for scoring (see `prepareCondition`). */
export interface ConditionProfile {
  units: Unit[];
  bigrams: string[];
}

/** A message prepared for scoring (see `prepareMessage`). */
export interface MessageFeatures {
  stems: ReadonlySet<string>;
  concepts: ReadonlySet<string>;
  bigrams: ReadonlySet<string>;
}

function pairs(stems: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < stems.length; i++) out.push(`${stems[i]} ${stems[i + 1]}`);
  return out;
}

/**
 * Splits a condition into units: each concept phrase is one unit, each other content word
 * is one unit. A condition made only of stop words ("yes") keeps all its words.
 */
export function prepareCondition(condition: string): ConditionProfile {
  const { all, content, contentIndex } = analyze(condition);
  const useAll = content.length === 0;
  const seq = useAll ? all : content;
  const toSeq = (i: number): number => (useAll ? i : contentIndex[i]!);

  const covered = new Set<number>();
  const units: Unit[] = [];
  const phraseHits = [
    ...findPhrases(seq, { overlap: false }).map((h) => ({ positions: range(h.start, h.length), concepts: h.concepts })),
    ...findPhrases(all, { overlap: false }).map((h) => ({
      positions: range(h.start, h.length).map(toSeq).filter((p) => p >= 0),
      concepts: h.concepts,
    })),
  ];
  for (const hit of phraseHits) {
    const fresh = hit.positions.filter((p) => !covered.has(p));
    if (hit.positions.length > 0 && fresh.length === 0) continue;
    for (const p of fresh) covered.add(p);
    units.push({ terms: fresh.map((p) => seq[p]!), concepts: hit.concepts });
  }
  seq.forEach((term, i) => {
    if (!covered.has(i)) units.push({ terms: [term], concepts: concepts.words.get(term) ?? [] });
  });
  const seen = new Set<string>();
  const unique = units.filter((u) => {
    const key = `${u.terms.join(' ')}|${u.concepts.join(' ')}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return { units: unique, bigrams: [...new Set(pairs(seq))] };
}

function range(start: number, length: number): number[] {
  return Array.from({ length }, (_, i) => start + i);
}

/** Stems, concepts (words and phrases, overlapping) and content bigrams of a message. */
export function prepareMessage(message: string): MessageFeatures {
  const { all, content } = analyze(message);
  const found = new Set<string>();
  for (const stem of all) for (const c of concepts.words.get(stem) ?? []) found.add(c);
  for (const hit of [...findPhrases(all, { overlap: true }), ...findPhrases(content, { overlap: true })]) {
    for (const c of hit.concepts) found.add(c);
  }
  return { stems: new Set(all), concepts: found, bigrams: new Set(pairs(content)) };
}

function termCredit(term: string, message: MessageFeatures): number {
  if (message.stems.has(term)) return 1;
  if (term.length >= 4) {
    for (const s of message.stems) {
      if (s.length >= 4 && (s.startsWith(term) || term.startsWith(s))) return PREFIX_CREDIT;
    }
  }
  return 0;
}

function unitCredit(unit: Unit, message: MessageFeatures): number {
  const terms = unit.terms.length === 0 ? 0 : unit.terms.reduce((sum, t) => sum + termCredit(t, message), 0) / unit.terms.length;
  const concept = unit.concepts.some((c) => message.concepts.has(c)) ? CONCEPT_CREDIT : 0;
  return Math.max(terms, concept);
}

/** Profiles of the conditions scored lately: a bot's conditions are the same turn after turn. */
const conditionCache = new Map<string, ConditionProfile>();
const CONDITION_CACHE_SIZE = 2_000;

/** `prepareCondition(condition)`, remembered for the most recent conditions (profiles are never modified). */
function preparedCondition(condition: string): ConditionProfile {
  let profile = conditionCache.get(condition);
  if (!profile) {
    profile = prepareCondition(condition);
    if (conditionCache.size >= CONDITION_CACHE_SIZE) conditionCache.delete(conditionCache.keys().next().value!);
    conditionCache.set(condition, profile);
  }
  return profile;
}

/**
 * How well `message` satisfies `condition`, from 0 to 1 (three decimals): 90% from the
 * weighted share of the condition's units found in the message (exact 1, via concept 0.9,
 * prefix 0.8; intent units weigh 1.5), 10% from the share of the condition's word bigrams
 * found as bigrams of the message — so a condition met word for word and in phrase order
 * outranks one met loosely, and only multi-word conditions reach 1.
 */
export function scoreCondition(condition: ConditionProfile | string, message: MessageFeatures | string): number {
  const profile = typeof condition === 'string' ? preparedCondition(condition) : condition;
  const features = typeof message === 'string' ? prepareMessage(message) : message;
  if (profile.units.length === 0) return 0;
  let total = 0;
  let got = 0;
  for (const unit of profile.units) {
    const weight = unit.concepts.length > 0 ? INTENT_WEIGHT : 1;
    total += weight;
    got += weight * unitCredit(unit, features);
  }
  const coverage = got / total;
  const bigrams = coverage > 0 && profile.bigrams.length > 0 ? profile.bigrams.filter((b) => features.bigrams.has(b)).length / profile.bigrams.length : 0;
  return Math.round(((1 - BIGRAM_SHARE) * coverage + BIGRAM_SHARE * bigrams) * 1000) / 1000;
}

/** The best score of any of `conditions` against `message` (0 for none). */
export function bestConditionScore(conditions: readonly string[], message: MessageFeatures | string): number {
  const features = typeof message === 'string' ? prepareMessage(message) : message;
  return conditions.reduce((best, c) => Math.max(best, scoreCondition(c, features)), 0);
}

/** A guideline whose condition matched, with its score. */
export interface GuidelineMatch {
  guideline: Guideline;
  score: number;
}

const criticalityRank: Record<Criticality, number> = { high: 0, medium: 1, low: 2 };

/**
 * The enabled guidelines whose condition scores at least `threshold` (default
 * MATCH_THRESHOLD), best first; equal scores put higher criticality first, then keep the
 * guidelines' given order. Disabled guidelines never match.
 */
export function matchGuidelines(guidelines: readonly Guideline[], message: string, options: { threshold?: number } = {}): GuidelineMatch[] {
  const threshold = options.threshold ?? MATCH_THRESHOLD;
  const features = prepareMessage(message);
  const matches: Array<GuidelineMatch & { index: number }> = [];
  guidelines.forEach((guideline, index) => {
    if (guideline.enabled === false) return;
    const score = scoreCondition(guideline.condition, features);
    if (score >= threshold) matches.push({ guideline, score, index });
  });
  matches.sort(
    (a, b) =>
      b.score - a.score ||
      (criticalityRank[a.guideline.criticality] ?? 1) - (criticalityRank[b.guideline.criticality] ?? 1) ||
      a.index - b.index,
  );
  return matches.map(({ guideline, score }) => ({ guideline, score }));
}
