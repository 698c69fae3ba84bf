import { describe, expect, it } from 'vitest';
import { TransactionStateError, TxState, canTransition, isTerminal, transition } from '../../src/core/index.js';

const states = Object.values(TxState);
const legal = new Set([
  'idle>active',
  'idle>failed',
  'active>committing',
  'active>aborting',
  'committing>committing',
  'committing>committed',
  'committing>aborted',
  'committing>failed',
  'aborting>aborted',
  'aborting>failed',
]);

describe('TxState transition table', () => {
  it('is frozen and lists exactly the seven states', () => {
    expect(Object.isFrozen(TxState)).toBe(true);
    expect(states).toEqual(['idle', 'active', 'committing', 'committed', 'aborting', 'aborted', 'failed']);
  });

  it.each(states.flatMap((from) => states.map((to) => [from, to] as const)))('%s -> %s follows the table', (from, to) => {
    const allowed = legal.has(`${from}>${to}`);
    expect(canTransition(from, to)).toBe(allowed);
    if (allowed) {
      expect(transition(from, to, 'm', 'memory')).toBe(to);
    } else {
      expect(() => transition(from, to, 'commit', 'memory')).toThrow(TransactionStateError);
    }
  });

  it('names the method and the state in the error, and says how to go on from an ended transaction', () => {
    const err = (() => {
      try {
        transition('committed', 'committing', 'commit', 'postgres');
      } catch (e) {
        return e as TransactionStateError;
      }
      throw new Error('expected a throw');
    })();
    expect(err.method).toBe('commit');
    expect(err.state).toBe('committed');
    expect(err.backend).toBe('postgres');
    expect(err.message).toMatch(/commit\(\).*postgres.*committed.*start a new transaction/);
  });

  it('has no way out of committed, aborted and failed, so nothing waits in committing forever', () => {
    expect(states.filter(isTerminal)).toEqual(['committed', 'aborted', 'failed']);
    // Every other state reaches a terminal one through the table.
    for (const start of states.filter((x) => !isTerminal(x))) {
      const seen = new Set<TxState>([start]);
      const queue: TxState[] = [start];
      while (queue.length > 0) {
        const s = queue.shift() as TxState;
        for (const t of states) {
          if (canTransition(s, t) && !seen.has(t)) {
            seen.add(t);
            queue.push(t);
          }
        }
      }
      expect([...seen].some(isTerminal)).toBe(true);
    }
  });
});
