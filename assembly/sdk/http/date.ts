// The Date header (RFC 9110 §5.6.7): IMF-fixdate, e.g.
// "Sun, 06 Nov 1994 08:49:37 GMT", always 29 bytes.
//
// Every response carries it, so it is formatted once per second of wall
// clock, not once per response: `refresh` reads the clock (one cheap host
// call) and reformats only when the second has changed.

import { unixSeconds } from "../time";

export const DATE_LENGTH: i32 = 29;

const DAY_NAMES = "SunMonTueWedThuFriSat";
const MONTH_NAMES = "JanFebMarAprMayJunJulAugSepOctNovDec";

export class DateCache {
  /** The formatted date; valid after the first refresh. */
  readonly ptr: usize = heap.alloc(<usize>DATE_LENGTH);
  private second: u64 = u64.MAX_VALUE;

  /** Brings the date up to the current second. Call before writing responses. */
  refresh(): void {
    const now = unixSeconds();
    if (now == this.second) return;
    this.second = now;
    formatImfFixdate(now, this.ptr);
  }
}

/** Writes `seconds` since the Unix epoch as an IMF-fixdate (29 bytes) at `out`. */
export function formatImfFixdate(seconds: u64, out: usize): void {
  const days = <i64>(seconds / 86400);
  const secOfDay = <i32>(seconds % 86400);
  // Civil date from a day count (Howard Hinnant's days_from_civil, inverted):
  // exact for every date, no tables, no loops.
  const z = days + 719468;
  const era = (z >= 0 ? z : z - 146096) / 146097;
  const doe = z - era * 146097; // day of era [0, 146096]
  const yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; // year of era
  const doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year, from March 1
  const mp = (5 * doy + 2) / 153; // month, from March = 0
  const day = <i32>(doy - (153 * mp + 2) / 5 + 1);
  const month = <i32>(mp < 10 ? mp + 3 : mp - 9); // 1..12
  const year = <i32>(yoe + era * 400 + (month <= 2 ? 1 : 0));
  const weekday = <i32>((days + 4) % 7); // 1970-01-01 was a Thursday

  putName(out, DAY_NAMES, weekday);
  store<u8>(out + 3, 44); // ','
  store<u8>(out + 4, 32);
  put2(out + 5, day);
  store<u8>(out + 7, 32);
  putName(out + 8, MONTH_NAMES, month - 1);
  store<u8>(out + 11, 32);
  put2(out + 12, year / 100);
  put2(out + 14, year % 100);
  store<u8>(out + 16, 32);
  put2(out + 17, secOfDay / 3600);
  store<u8>(out + 19, 58); // ':'
  put2(out + 20, secOfDay / 60 % 60);
  store<u8>(out + 22, 58);
  put2(out + 23, secOfDay % 60);
  store<u8>(out + 25, 32);
  store<u8>(out + 26, 71); // "GMT"
  store<u8>(out + 27, 77);
  store<u8>(out + 28, 84);
}

function putName(out: usize, names: string, i: i32): void {
  for (let k = 0; k < 3; k++) store<u8>(out + <usize>k, <u8>names.charCodeAt(i * 3 + k));
}

function put2(out: usize, v: i32): void {
  store<u8>(out, <u8>(48 + v / 10));
  store<u8>(out + 1, <u8>(48 + v % 10));
}
