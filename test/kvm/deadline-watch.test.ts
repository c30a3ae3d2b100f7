/**
 * How the model keeps a run's deadline (host/kvm/deadline-watch.ts), on a clock the test drives:
 * guest work of a known cost per unit, so that the slice sizes and the looks at the clock are
 * exact, whatever the load of the machine (test/kvm/run-deadline.test.ts runs real guest code
 * against the real clock).
 */
import test from 'ava';
import { DeadlineWatch } from '../../host/kvm/deadline-watch.js';

const MS = 1_000_000n;

/** A clock that moves only when the guest works: `nsPerUnit` for each unit spent. */
class GuestClock {
  now = 1_000_000_000n;
  reads = 0;
  nsPerUnit = 2n;
  readonly read = (): bigint => {
    this.reads++;
    return this.now;
  };
  /** The guest runs until the watch looks at the clock; the units of that slice. */
  slice(watch: DeadlineWatch): { units: number; late: boolean } {
    const units = watch.left;
    this.now += BigInt(units) * this.nsPerUnit;
    return { units, late: watch.spend(units) };
  }
}

test('fast code: the slice grows fourfold at each look, from 16 units to 8,192, and stays there', (t) => {
  const clock = new GuestClock();
  const watch = new DeadlineWatch(clock.read);
  t.true(watch.begin(clock.now + 1000n * MS));
  const sizes = [16, 64, 256, 1024, 4096, 8192, 8192].map((expected) => {
    t.is(watch.sliceUnits, expected);
    return clock.slice(watch).units;
  });
  t.deepEqual(sizes, [16, 64, 256, 1024, 4096, 8192, 8192]);
});

test('code that turns slow overruns its deadline by one slice at most, then slices fit a millisecond of it', (t) => {
  const clock = new GuestClock();
  const watch = new DeadlineWatch(clock.read);
  watch.begin(clock.now + 1000n * MS);
  while (watch.sliceUnits < 8192) clock.slice(watch);
  // Self-modifying code: about 10 µs a unit.
  clock.nsPerUnit = 10_000n;
  const deadline = clock.now + 30n * MS;
  t.true(watch.begin(deadline));
  const first = clock.slice(watch);
  t.is(first.units, 8192, 'the slice sized for fast code');
  t.true(first.late, 'the deadline passed inside it and is noticed at its end');
  t.is(clock.now - deadline, 8192n * 10_000n - 30n * MS, 'the overrun: what is left of that one slice');
  t.is(watch.sliceUnits, 100, 'shrunk to a millisecond of this code');
  // The next run's deadline is kept to within a slice: a millisecond.
  const next = clock.now + 30n * MS;
  t.true(watch.begin(next));
  let late = false;
  while (!late) late = clock.slice(watch).late;
  t.true(clock.now >= next && clock.now - next <= 1n * MS, `noticed ${clock.now - next} ns after the deadline`);
});

test('runs with one deadline share it: no clock read at their start; one that passes between them is noticed within a slice, and it stays passed', (t) => {
  const clock = new GuestClock();
  const watch = new DeadlineWatch(clock.read);
  const deadline = clock.now + 1n * MS;
  t.true(watch.begin(deadline));
  t.is(clock.reads, 1, 'a new deadline is held against the clock at once');
  // Runs of 3 units each (a guest that exits at every third instruction).
  let runs = 0;
  let late = false;
  while (!late) {
    t.true(watch.begin(deadline), 'the deadline has not been seen passed');
    clock.now += 3n * clock.nsPerUnit;
    late = watch.spend(3);
    runs++;
  }
  t.true(runs > 1000, `${runs} runs`);
  t.true(clock.reads < runs / 100, `${clock.reads} clock reads for ${runs} runs`);
  t.true(clock.now >= deadline && clock.now - deadline <= 8192n * clock.nsPerUnit, 'noticed within a slice');
  const reads = clock.reads;
  t.false(watch.begin(deadline), 'the same deadline again: passed at once');
  t.is(clock.reads, reads, 'without reading the clock');
  t.true(watch.begin(clock.now + 1n * MS), 'a new deadline is a new start');
});

test('a new deadline already passed is found so before the guest runs', (t) => {
  const clock = new GuestClock();
  const watch = new DeadlineWatch(clock.read);
  t.false(watch.begin(clock.now));
  t.false(watch.begin(clock.now - 1n));
  t.true(watch.begin(clock.now + 1n));
});
