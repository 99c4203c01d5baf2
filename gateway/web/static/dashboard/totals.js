// The totals tiles: `dashboard` over the sessions in the date range of the users with the device and
// sex chosen, the filters of the funnel beside them, so numbers side by side agree.
import { queryField } from './api.js';
import { fmt } from './charts.js';
import { $, busy, describe, exactMoney, latest } from './dom.js';

const TOTALS = `query DashboardTotals($range: DateRange, $device: Device, $sex: Sex) {
  dashboard(range: $range, device: $device, sex: $sex) { users sessions conversions conversionRate revenue }
}`;

const totalsTurn = latest();

export async function loadTotals(filters, { quiet = false } = {}) {
  const current = totalsTurn();
  const panel = $('kpis');
  if (!quiet) busy(panel, true);
  const { start, end, device, sex } = filters;
  const range = start || end ? { start: start || null, end: end || null } : null;
  try {
    const d = await queryField('dashboard', TOTALS, { range, device: device || null, sex: sex || null });
    if (!current()) return;
    $('kpi-users').textContent = fmt.int.format(d.users);
    $('kpi-sessions').textContent = fmt.int.format(d.sessions);
    $('kpi-conversions').textContent = fmt.int.format(d.conversions);
    $('kpi-rate').textContent = fmt.pct(d.conversionRate);
    $('kpi-revenue').textContent = fmt.moneyFit(d.revenue); // $3.0B fits the tile where 13 digits do not
    exactMoney($('kpi-revenue'), d.revenue);
    panel.classList.remove('failed');
    panel.removeAttribute('title');
  } catch (error) {
    if (!current()) return;
    clearTotals(`Totals unavailable: ${describe(error)}`);
  } finally {
    if (current()) busy(panel, false);
  }
}

export function clearTotals(why) {
  totalsTurn();
  const panel = $('kpis');
  busy(panel, false);
  for (const id of ['kpi-users', 'kpi-sessions', 'kpi-conversions', 'kpi-rate', 'kpi-revenue']) $(id).textContent = '–';
  $('kpi-revenue').removeAttribute('title');
  panel.classList.add('failed');
  panel.title = why;
}
