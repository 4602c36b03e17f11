// The view on screen: its polling timers stop when another view replaces it, and what a view
// finishes loading after it was replaced is not drawn (each view checks its own token).

export const POLL_MS = 2000;

let current = { timers: [], alive: true };

export function newView() {
  current.alive = false;
  current.timers.forEach(clearInterval);
  current = { timers: [], alive: true };
  return current;
}

export function thisView() { return current; }

export function every(ms, fn) {
  const mine = current;
  const run = async () => { if (mine.alive) { try { await fn(); } catch (e) { showError(e); } } };
  mine.timers.push(setInterval(run, ms));
}

export function showError(error) {
  const box = document.getElementById("fatal");
  box.hidden = !error;
  box.textContent = error ? (error.status === 404 ? "Not found (for this API key): " : "") + String(error.message || error) : "";
}
