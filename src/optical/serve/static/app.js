// The page of `optical serve`: same-origin fetches only (no CDN, no call off the machine).
"use strict";

const $ = (id) => document.getElementById(id);

async function call(path, body) {
  const response = await fetch(path, body === undefined ? {} : {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) {
    throw new Error(typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail));
  }
  return data;
}

function fill(select, values) {
  for (const value of values) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = value;
    select.appendChild(option);
  }
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function selection() {
  return {query: $("query").value, collection: $("collection").value, student: $("student").value};
}

async function search(event) {
  event.preventDefault();
  const request = selection();
  $("status").textContent = "searching…";
  $("alignment").hidden = true;
  try {
    const result = await call("/api/search", request);
    const body = $("results").querySelector("tbody");
    body.replaceChildren();
    for (const hit of result.hits) {
      const row = document.createElement("tr");
      row.className = "hit";
      row.dataset.docId = hit.doc_id;
      cell(row, String(hit.rank));
      const doc = cell(row, "", "doc");
      const id = document.createElement("code");
      id.textContent = hit.doc_id;
      doc.append(id, " ", hit.title || hit.snippet);
      cell(row, hit.dense.toFixed(4), "dense");
      cell(row, hit.maxsim === null ? "–" : hit.maxsim.toFixed(4), "maxsim");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "align-button";
      button.textContent = "alignment";
      button.addEventListener("click", () => showAlignment(request, hit));
      row.appendChild(document.createElement("td")).appendChild(button);
      body.appendChild(row);
    }
    $("results").hidden = false;
    $("status").textContent = `${result.hits.length} documents for “${result.query}”`;
  } catch (error) {
    $("results").hidden = true;
    $("status").textContent = `error: ${error.message}`;
  }
}

async function showAlignment(request, hit) {
  $("status").textContent = "aligning…";
  try {
    const plan = await call("/api/align", {...request, doc_id: hit.doc_id});
    drawHeatmap(plan);
    $("alignment-title").textContent = `${hit.doc_id} (${plan.student})`;
    $("alignment-note").textContent =
      `OT plan between the query's tokens (rows, student) and the document's tokens (columns, teacher); ` +
      `shade: share of the query token's mass. <P, C> = ${plan.value.toFixed(4)}; centre: ${plan.center}.`;
    $("alignment").hidden = false;
    $("status").textContent = "";
  } catch (error) {
    $("status").textContent = `error: ${error.message}`;
  }
}

function drawHeatmap(plan) {
  const table = $("heatmap");
  table.replaceChildren();
  const head = document.createElement("tr");
  head.appendChild(document.createElement("th"));
  for (const token of plan.english_tokens) {
    const th = document.createElement("th");
    th.className = "column";
    th.textContent = token;
    head.appendChild(th);
  }
  table.appendChild(head);
  plan.plan.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.textContent = plan.foreign_tokens[i];
    tr.appendChild(th);
    for (const mass of row) {
      const share = mass / total;
      const td = document.createElement("td");
      td.className = "mass";
      td.title = share.toFixed(3);
      td.style.backgroundColor = `rgba(31, 119, 180, ${share.toFixed(3)})`;
      tr.appendChild(td);
    }
    table.appendChild(tr);
  });
}

async function start() {
  const options = await call("/api/options");
  fill($("collection"), options.collections);
  fill($("student"), options.students);
  $("search-form").addEventListener("submit", search);
  document.body.dataset.ready = "true";
}

start().catch((error) => { $("status").textContent = `error: ${error.message}`; });
