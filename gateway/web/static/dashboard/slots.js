// Where a trend's periods go along the chart's x axis. The API sends every period of the range, the
// empty ones as zeros, so one live event today after a 2015 dataset is 600 weeks of nothing between
// two clusters of data. A long run of empty periods is drawn as one narrow break instead, so the
// periods with data get the width; a short run keeps its slots, since "nobody started these weeks"
// is worth seeing when it sits among weeks that had entrants.

// Runs of more empty periods than this become a break: two months of weeks, or eight months.
export const MAX_EMPTY_SLOTS = 8;
// A break is as wide as 1.5 periods, but never more than 40 px: it stands for no data.
const GAP_PERIODS = 1.5;
const GAP_MAX_PX = 40;

// The slots of `cohorts` (users starting in each period, in order): `{ kind: 'period', index }` for a
// period drawn as today, `{ kind: 'gap', from, to }` for the empty periods from..to (indices, both
// included) drawn as one break.
export function trendSlots(cohorts, maxEmpty = MAX_EMPTY_SLOTS) {
  const slots = [];
  let i = 0;
  while (i < cohorts.length) {
    if (cohorts[i]) {
      slots.push({ kind: 'period', index: i });
      i += 1;
      continue;
    }
    let j = i;
    while (j + 1 < cohorts.length && !cohorts[j + 1]) j += 1;
    if (j - i + 1 > maxEmpty) slots.push({ kind: 'gap', from: i, to: j });
    else for (let k = i; k <= j; k++) slots.push({ kind: 'period', index: k });
    i = j + 1;
  }
  return slots;
}

// Each slot's `left` and `width` in pixels over a plot `width` wide starting at `left`, and the width
// of one period (`band`). With no break every period is `width / periods` wide, as before.
export function layoutSlots(slots, left, width) {
  const gaps = slots.filter((s) => s.kind === 'gap').length;
  const periods = slots.length - gaps;
  const gapW = gaps ? Math.min(GAP_MAX_PX, (GAP_PERIODS * width) / (periods + GAP_PERIODS * gaps)) : 0;
  const band = periods ? (width - gaps * gapW) / periods : 0;
  let x = left;
  const placed = slots.map((s) => {
    const w = s.kind === 'gap' ? gapW : band;
    const at = { ...s, left: x, width: w, centre: x + w / 2 };
    x += w;
    return at;
  });
  return { slots: placed, band };
}
