// A fake's request log: entries in arrival order, updated in place when answered, and a way to
// wait for an entry (past or future) without polling.
export class RequestLog<T> {
  readonly entries: T[] = [];
  #waiters = new Set<() => void>();

  add(entry: T): T {
    this.entries.push(entry);
    this.changed();
    return entry;
  }

  /** Call after updating an entry in place, so waiters see it. */
  changed(): void {
    for (const check of [...this.#waiters]) check();
  }

  waitFor(match: (entry: T) => boolean, timeoutMs = 5000): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.entries.find(match);
        if (found === undefined) return false;
        (this.#waiters.delete(check), clearTimeout(timer), resolve(found));
        return true;
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`no matching request within ${timeoutMs} ms; got ${JSON.stringify(this.entries)}`));
      }, timeoutMs);
      if (!check()) this.#waiters.add(check);
    });
  }
}
