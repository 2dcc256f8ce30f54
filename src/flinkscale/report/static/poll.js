// flinkscale pages: ask the server for the page's state every few seconds and keep the #status line honest.
// Shared by the run dashboard (dashboard.js) and the job list (jobs.js); loaded before either.
"use strict";

// Fetches urlOf() every intervalMs and hands the JSON answer to onState. While the server does not answer
// (the run may have ended and the server stopped) the page says so and keeps its last picture.
async function pollState(urlOf, onState, intervalMs) {
  const status = document.getElementById("status");
  try {
    const response = await fetch(urlOf(), { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    onState(await response.json());
    status.textContent = "live · updated " + new Date().toISOString().substring(11, 19) + " UTC";
    status.classList.remove("stale");
  } catch (err) {
    status.textContent = "disconnected (" + err.message + "), retrying";
    status.classList.add("stale");
  } finally {
    setTimeout(() => pollState(urlOf, onState, intervalMs), intervalMs);
  }
}
