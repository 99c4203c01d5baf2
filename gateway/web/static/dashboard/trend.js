// The trend's points for the dashboard's filters. The API sends one point per period from the period of
// `filter.start` to that of `filter.end` and refuses (BAD_USER_INPUT) more than 1000 of them, so a range
// such as 1970-01-01 .. 2999-12-31 failed the panel although the data spans a few weeks. Refused so, the
// range is clamped to the data: an end past the data (or a start before it) excludes nothing and is
// left out, and the API then takes the data's first or last period for it.
import { queryField } from './api.js';

export const TREND = `query DashboardTrend($interval: Interval!, $steps: [String!], $filter: FunnelFilter, $order: StepOrder!, $window: Int) {
  funnelTrend(interval: $interval, steps: $steps, filter: $filter, order: $order, conversionWindowSeconds: $window) {
    period conversionRate steps { users }
  }
}`;

// A refusal of the input: asking again the same cannot help, so no "Try again" for it.
export const refusedInput = (error) => error?.errors?.[0]?.extensions?.code === 'BAD_USER_INPUT';

// The last day of the period starting on `period` (a Monday for weeks, the 1st for months).
export function periodEnd(period, interval) {
  const day = new Date(`${period}T00:00:00Z`);
  if (interval === 'WEEK') day.setUTCDate(day.getUTCDate() + 6);
  if (interval === 'MONTH') day.setUTCMonth(day.getUTCMonth() + 1, 0);
  return day.toISOString().slice(0, 10);
}

// The clamp last worked out, for the same request: the dashboard asks again every 15 s while the range
// includes today, and each would otherwise be refused and clamped anew (three requests, not one).
let clamp = { key: null, filter: null };

export async function trendPoints(interval, definition) {
  const ask = (filter) => queryField('funnelTrend', TREND, { interval, ...definition, filter });
  const key = JSON.stringify([interval, definition]);
  const filter = definition.filter;
  try {
    return await ask(clamp.key === key ? clamp.filter : filter);
  } catch (error) {
    if (!refusedInput(error) || !(filter?.start || filter?.end)) throw error;
    const { start, end, ...rest } = filter;
    // The same funnel over all the data: its first and last periods are the data's span.
    const span = await ask(Object.keys(rest).length ? rest : null);
    if (!span.length) return span;
    const clamped = { ...rest };
    if (start && start > span[0].period) clamped.start = start;
    if (end && end < periodEnd(span[span.length - 1].period, interval)) clamped.end = end;
    if (clamped.start === start && clamped.end === end) throw error; // within the data: too long still
    clamp = { key, filter: Object.keys(clamped).length ? clamped : null };
    if (!clamped.start && !clamped.end) return span; // the range holds all the data
    return ask(clamp.filter);
  }
}
