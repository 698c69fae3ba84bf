/**
 * The ambient transaction of several contexts at once: all of txkit keeps it in
 * one AsyncLocalStorage (a chain of frames), and each context must still see
 * only its own transaction, whatever the nesting.
 */
import { describe, expect, it } from 'vitest';
import { memoryTransactions } from '../../src/adapters/memory/index.js';
import { TxState } from '../../src/core/index.js';

describe('ambient transactions of several contexts', () => {
  it('each context sees its own transaction through nesting, not_supported and the end of an inner unit', async () => {
    const a = memoryTransactions();
    const b = memoryTransactions();
    const seen: Record<string, string | undefined> = {};
    await a.withTransaction(async (ta) => {
      seen.aInA = a.current()?.id;
      seen.bInA = b.current()?.id;
      await b.withTransaction(async (tb) => {
        seen.aInB = a.current()?.id;
        seen.bInB = b.current()?.id;
        await a.withTransaction(
          async () => {
            seen.aOutsideA = a.current()?.id;
            seen.bOutsideA = b.current()?.id;
            // not_supported hid a's transaction, so 'required' starts a new one of a here.
            await a.withTransaction(async (inner) => {
              seen.aNew = inner.id;
            });
          },
          { propagation: 'not_supported' },
        );
        expect(tb.state).toBe(TxState.active);
      });
      seen.aAfterB = a.current()?.id;
      seen.bAfterB = b.current()?.id;
      expect(ta.state).toBe(TxState.active);
      seen.ta = ta.id;
    });
    expect(seen.aInA).toBe(seen.ta);
    expect(seen.bInA).toBeUndefined();
    expect(seen.aInB).toBe(seen.ta);
    expect(seen.bInB).toBeDefined();
    expect(seen.aOutsideA).toBeUndefined();
    expect(seen.bOutsideA).toBe(seen.bInB);
    expect(seen.aNew).toBeDefined();
    expect(seen.aNew).not.toBe(seen.ta);
    expect(seen.aAfterB).toBe(seen.ta);
    expect(seen.bAfterB).toBeUndefined();
    await a.close();
    await b.close();
  });

  it("work a unit started that runs after the unit ended sees no transaction of that context, and still sees another context's running one", async () => {
    const a = memoryTransactions();
    const b = memoryTransactions();
    let fire!: () => void;
    const fired = new Promise<void>((resolve) => (fire = resolve));
    const late: { a?: string | undefined; b?: string | undefined } = {};
    let bId = '';
    await b.withTransaction(async (tb) => {
      bId = tb.id;
      let started!: Promise<void>;
      await a.withTransaction(async () => {
        started = fired.then(() => {
          late.a = a.current()?.id;
          late.b = b.current()?.id;
        });
      });
      fire();
      await started;
    });
    expect(late.a).toBeUndefined();
    expect(late.b).toBe(bId);
    await a.close();
    await b.close();
  });
});
