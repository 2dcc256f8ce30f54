// flinkscale job list: polls /api/jobs and lists every job of the multi-job daemon, each linking to its page.
// Strings from the store (job names, reasons) go into the DOM through textContent, never innerHTML.
"use strict";

const JOBS_POLL_MS = 2000;
const jobsPage = { jobs: 0, lastOk: null };
window.flinkscaleJobs = jobsPage;

function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text === null || text === undefined ? "–" : String(text);
  return td;
}

function parallelismText(job) {
  if (!job.parallelism) return "–";
  const values = Object.values(job.parallelism);
  return "total " + job.total_parallelism + " (max " + Math.max(...values) + " over " + values.length + " vertices)";
}

function row(job) {
  const tr = document.createElement("tr");
  tr.dataset.jobId = job.job_id;
  if (job.gone) tr.className = "gone";
  const name = document.createElement("td");
  const link = document.createElement("a");
  link.href = "/job/" + encodeURIComponent(job.job_id);
  link.textContent = job.job_name;
  name.appendChild(link);
  tr.appendChild(name);
  tr.appendChild(cell(job.job_id, "mono"));
  const phase = cell(job.phase + (job.detail ? ": " + job.detail : ""));
  tr.appendChild(phase);
  tr.appendChild(cell(parallelismText(job)));
  const last = job.last_decision;
  tr.appendChild(cell(last ? new Date(last.timestamp * 1000).toISOString().substring(11, 19) + " UTC · " +
    last.summary : null));
  return tr;
}

function showJobs(state) {
  const body = document.querySelector("#jobs tbody");
  if (state.jobs.length === 0) {
    const tr = document.createElement("tr");
    tr.className = "empty";
    const td = cell("no job in the state store yet");
    td.colSpan = 5;
    tr.appendChild(td);
    body.replaceChildren(tr);
  } else {
    body.replaceChildren(...state.jobs.map(row));
  }
  jobsPage.jobs = state.jobs.length;
  const problems = document.getElementById("problems");
  problems.hidden = state.problems.length === 0;
  document.getElementById("problem-list").replaceChildren(...state.problems.map((p) => {
    const li = document.createElement("li");
    li.textContent = p;
    return li;
  }));
  jobsPage.lastOk = Date.now();
  document.body.dataset.state = "ready";
}

pollState(() => "/api/jobs", showJobs, JOBS_POLL_MS);
