// Per-connection state by small integer keys: insert returns a key (use it
// as the poll token), get/remove by key, freed keys are reused.

export class Slab<T> {
  private items: Array<T | null> = new Array<T | null>();
  private free: Array<i32> = new Array<i32>();
  private count: i32 = 0;

  get size(): i32 { return this.count; }

  /** One past the highest key ever used: get(k) for k below it may hold an item. */
  get capacity(): i32 { return this.items.length; }

  /** The key the next insert will return. */
  nextKey(): i32 {
    return this.free.length > 0 ? this.free[this.free.length - 1] : this.items.length;
  }

  insert(item: T): i32 {
    this.count++;
    if (this.free.length > 0) {
      const k = this.free.pop();
      this.items[k] = item;
      return k;
    }
    this.items.push(item);
    return this.items.length - 1;
  }

  /** The item at `key`, or null when the key is free or out of range. */
  get(key: i32): T | null {
    return key >= 0 && key < this.items.length ? this.items[key] : null;
  }

  remove(key: i32): void {
    if (this.get(key) === null) return;
    this.items[key] = null;
    this.free.push(key);
    this.count--;
  }

  /** Calls `f` for every item (for broadcasts and shutdown). */
  forEach(f: (item: T, key: i32) => void): void {
    for (let k = 0; k < this.items.length; k++) {
      const item = this.items[k];
      if (item !== null) f(item, k);
    }
  }
}
