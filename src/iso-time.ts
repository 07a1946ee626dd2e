/**
 * A time as Date#toISOString prints it (UTC, milliseconds, "Z"), computed from the epoch milliseconds alone. The
 * first toISOString of a process sets up the local time zone (ICU reads /etc/localtime and the links to it): about
 * 1 ms on a workstation, tens of ms under emulation, for a value that never needs a time zone.
 */
const DAY_MS = 86_400_000;
/** 9999-12-31T23:59:59.999Z: beyond it toISOString prints a six-digit signed year. */
const LAST_FOUR_DIGIT_YEAR_MS = 253_402_300_799_999;

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

export function isoUtc(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0 || ms > LAST_FOUR_DIGIT_YEAR_MS) return new Date(ms).toISOString();
  const days = Math.floor(ms / DAY_MS);
  let rest = ms - days * DAY_MS;
  // the civil date of a day count (days from 1970-01-01; H. Hinnant's days_from_civil inverted), in 400-year eras
  // that start on March 1st
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  const millis = rest - seconds * 1000;
  return (
    `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T` +
    `${pad(hours, 2)}:${pad(minutes, 2)}:${pad(seconds, 2)}.${pad(millis, 3)}Z`
  );
}
