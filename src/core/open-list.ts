/**
 * The transactions of a context that are still open, for close() to abort.
 * A doubly linked list whose nodes the members keep: adding and removing
 * touch a few links and hash nothing (a Set of fresh objects costs every
 * transaction about 0.07 µs, most of it giving each one an identity hash).
 * Imports nothing of txkit.
 * @internal
 */

/** One member's place in the list; its holder gives it back to delete(). */
export interface OpenNode<T> {
  readonly value: T;
  prev: OpenNode<T> | undefined;
  next: OpenNode<T> | undefined;
  linked: boolean;
}

export class OpenList<T> {
  #head: OpenNode<T> | undefined;

  add(value: T): OpenNode<T> {
    const node: OpenNode<T> = { value, prev: undefined, next: this.#head, linked: true };
    if (this.#head !== undefined) this.#head.prev = node;
    this.#head = node;
    return node;
  }

  /** Unlinks `node`; a node already unlinked is left as it is. */
  delete(node: OpenNode<T>): void {
    if (!node.linked) return;
    node.linked = false;
    const { prev, next } = node;
    if (prev === undefined) this.#head = next;
    else prev.next = next;
    if (next !== undefined) next.prev = prev;
    node.prev = node.next = undefined;
  }

  /** The members now, newest first; the list may change while the caller works through them. */
  values(): T[] {
    const all: T[] = [];
    for (let node = this.#head; node !== undefined; node = node.next) all.push(node.value);
    return all;
  }
}
