import { analyze } from './tokenize.ts';

/**
 * A small built-in concept table for common support intents. Each concept lists words and
 * phrases that mean the same thing to a support bot; a condition word and a message word
 * match when they share a concept ("refunds" ↔ "money back"). Terms are written naturally
 * and stemmed at load time with the same stemmer as the texts they are compared with.
 */
export const conceptTable: Readonly<Record<string, readonly string[]>> = {
  refund: ['refund', 'money back', 'my money', 'reimburse', 'reimbursement', 'repay', 'repayment', 'return', 'returns', 'chargeback', 'give back', 'pay back', 'credit back'],
  cancel: ['cancel', 'cancellation', 'unsubscribe', 'terminate', 'termination', 'stop subscription', 'end subscription', 'stop my subscription', 'end my subscription', 'stop membership', 'end membership', 'stop paying', 'quit', 'opt out'],
  price: ['price', 'pricing', 'cost', 'costs', 'how much', 'fee', 'fees', 'rate', 'rates', 'expensive', 'cheap', 'afford', 'quote', 'plans', 'tariff'],
  hours: ['hours', 'open', 'opening', 'opening times', 'opening hours', 'business hours', 'closing time', 'you close', 'what time', 'schedule', 'weekend', 'holiday'],
  shipping: ['shipping', 'ship', 'shipment', 'delivery', 'deliver', 'delivered', 'courier', 'parcel', 'package', 'tracking', 'track', 'dispatch', 'arrive', 'postage', 'where is my order'],
  order: ['order', 'orders', 'purchase', 'bought', 'order status', 'my order'],
  password: ['password', 'passcode', 'log in', 'login', 'logging in', 'sign in', 'signin', 'signing in', 'locked out', 'credentials', 'reset password', 'forgot password', 'two factor', '2fa'],
  account: ['account', 'profile', 'sign up', 'signup', 'register', 'registration', 'username'],
  human: ['human', 'agent', 'person', 'real person', 'representative', 'operator', 'staff', 'talk to someone', 'talk to somebody', 'speak to someone', 'live chat', 'manager', 'support team'],
  greeting: ['hello', 'hi', 'hey', 'heya', 'hiya', 'howdy', 'greetings', 'good morning', 'good afternoon', 'good evening', 'yo'],
  thanks: ['thanks', 'thank', 'thank you', 'thx', 'ty', 'cheers', 'appreciate', 'grateful'],
  goodbye: ['bye', 'goodbye', 'see you', 'farewell', 'good night', 'talk later', 'see ya'],
  complaint: ['complaint', 'complain', 'unhappy', 'angry', 'upset', 'frustrated', 'disappointed', 'terrible', 'awful', 'worst', 'dissatisfied'],
  problem: ['problem', 'issue', 'error', 'bug', 'broken', 'not working', 'does not work', 'crash', 'fail', 'failure', 'glitch', 'wrong'],
  billing: ['billing', 'bill', 'invoice', 'charge', 'charged', 'payment', 'pay', 'card', 'receipt', 'transaction'],
  discount: ['discount', 'coupon', 'promo', 'promo code', 'voucher', 'sale', 'deal', 'offer'],
  contact: ['contact', 'email', 'phone', 'phone number', 'call', 'reach', 'get in touch'],
  location: ['location', 'address', 'located', 'directions', 'where are you', 'store', 'branch', 'near me'],
  warranty: ['warranty', 'guarantee', 'repair'],
  affirm: ['yes', 'yeah', 'yep', 'yup', 'sure', 'ok', 'okay', 'of course', 'absolutely', 'correct', 'sounds good', 'go ahead'],
  deny: ['no', 'nope', 'nah', 'not really', 'no thanks'],
};

/** Concept ids per single stem, and per multi-word phrase (stems joined by spaces). */
export interface ConceptIndex {
  words: ReadonlyMap<string, readonly string[]>;
  phrases: ReadonlyMap<string, readonly string[]>;
  /** Longest phrase length, in words. */
  maxPhrase: number;
}

function add(map: Map<string, string[]>, key: string, concept: string): void {
  const list = map.get(key);
  if (!list) map.set(key, [concept]);
  else if (!list.includes(concept)) list.push(concept);
}

function buildIndex(table: Readonly<Record<string, readonly string[]>>): ConceptIndex {
  const wordMap = new Map<string, string[]>();
  const phraseMap = new Map<string, string[]>();
  let maxPhrase = 1;
  for (const [concept, terms] of Object.entries(table)) {
    for (const term of terms) {
      const stems = analyze(term).all;
      if (stems.length === 1) add(wordMap, stems[0]!, concept);
      else if (stems.length > 1) {
        add(phraseMap, stems.join(' '), concept);
        maxPhrase = Math.max(maxPhrase, stems.length);
      }
    }
    add(wordMap, analyze(concept).all[0]!, concept);
  }
  return { words: wordMap, phrases: phraseMap, maxPhrase };
}

/** The index of `conceptTable`, built once. */
export const concepts: ConceptIndex = buildIndex(conceptTable);

/** A phrase of the concept table found in a token sequence: where it is and what it means. */
export interface PhraseHit {
  start: number;
  length: number;
  concepts: readonly string[];
}

/**
 * Concept phrases in `stems`. With `overlap: false` (for conditions) hits are
 * non-overlapping, longest first at each position, left to right; with `overlap: true`
 * (for messages) every occurrence of every phrase is reported.
 */
export function findPhrases(stems: readonly string[], options: { overlap: boolean }, index: ConceptIndex = concepts): PhraseHit[] {
  const hits: PhraseHit[] = [];
  for (let i = 0; i < stems.length; ) {
    let longest = 0;
    for (let n = Math.min(index.maxPhrase, stems.length - i); n >= 2; n--) {
      const found = index.phrases.get(stems.slice(i, i + n).join(' '));
      if (!found) continue;
      hits.push({ start: i, length: n, concepts: found });
      longest = Math.max(longest, n);
      if (!options.overlap) break;
    }
    i += options.overlap || longest === 0 ? 1 : longest;
  }
  return hits;
}
