// A hashed timer wheel: WHEEL_SLOTS slots of `tickMs` each. Scheduling and
// cancelling cost O(1); advancing costs O(timers in the slots passed).
// Deadlines further out than one turn wait in their slot for later turns.
// Resolution is one tick: a timer fires at or after its deadline, never
// before, and at most a tick late (plus however long the loop was busy).

const WHEEL_SLOTS: i32 = 256;

export class Timer {
  deadline: u64 = 0;
  armed: bool = false;
  slot: i32 = -1;
  next: Timer | null = null;
  prev: Timer | null = null;
  /** What the owner wants back when the timer fires (a connection key, say). */
  constructor(public key: i32 = 0) {}
}

export class TimerWheel {
  private slots: StaticArray<Timer | null> = new StaticArray<Timer | null>(WHEEL_SLOTS);
  private current: u64; // the tick processed last
  private armedCount: i32 = 0;

  constructor(private tickMs: u64, nowMs: u64) {
    this.current = nowMs / tickMs;
  }

  get size(): i32 { return this.armedCount; }

  /** Arms (or re-arms) `t` to fire at `deadlineMs`. */
  schedule(t: Timer, deadlineMs: u64): void {
    if (t.armed) this.cancel(t);
    t.deadline = deadlineMs;
    let tick = deadlineMs / this.tickMs;
    if (deadlineMs % this.tickMs != 0) tick++; // never early
    if (tick <= this.current) tick = this.current + 1;
    const s = <i32>(tick % <u64>WHEEL_SLOTS);
    const head = this.slots[s];
    t.prev = null;
    t.next = head;
    if (head !== null) head.prev = t;
    this.slots[s] = t;
    t.slot = s;
    t.armed = true;
    this.armedCount++;
  }

  cancel(t: Timer): void {
    if (!t.armed) return;
    const prev = t.prev;
    const next = t.next;
    if (prev !== null) prev.next = next;
    else this.slots[t.slot] = next;
    if (next !== null) next.prev = prev;
    t.next = null;
    t.prev = null;
    t.armed = false;
    this.armedCount--;
  }

  /**
   * Milliseconds until the next slot that holds a timer, for poll's
   * timeout; -1 when no timer is armed. A loop with one timer 5 s away
   * sleeps until then instead of waking every tick (a timer more than a
   * turn away wakes the loop once per turn).
   */
  timeoutMs(nowMs: u64): i32 {
    if (this.armedCount == 0) return -1;
    for (let d: u64 = 1; d <= <u64>WHEEL_SLOTS; d++) {
      if (this.slots[<i32>((this.current + d) % <u64>WHEEL_SLOTS)] === null) continue;
      const at = (this.current + d) * this.tickMs;
      return nowMs >= at ? 0 : <i32>(at - nowMs);
    }
    return 0; // unreachable while armedCount > 0
  }

  /**
   * Advances to `nowMs` and appends the timers that are due (disarmed) to
   * `due`, in no particular order. Call after every poll; reuse `due` (an
   * array per call would be an allocation per loop turn).
   */
  advance(nowMs: u64, due: Timer[]): void {
    const target = nowMs / this.tickMs;
    // Past a whole turn every slot is visited once; each keeps what is not due yet.
    const last = min(target, this.current + <u64>WHEEL_SLOTS);
    while (this.current < last) {
      this.current++;
      const s = <i32>(this.current % <u64>WHEEL_SLOTS);
      let t = this.slots[s];
      while (t !== null) {
        const next = t.next;
        if (t.deadline <= nowMs) {
          this.cancel(t);
          due.push(t);
        }
        t = next;
      }
    }
    if (this.current < target) this.current = target;
  }
}
