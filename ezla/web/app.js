"use strict";
// Renders /v1/employer/ezla or /v1/patient/ezla. Text only (textContent), never innerHTML with data.
(function () {
  const kind = document.body.dataset.kind;
  const storageKey = "ezla-token-" + kind;  // an employer's and a patient's token never mix
  const api = kind === "employer" ? "/v1/employer/ezla?limit=200" : "/v1/patient/ezla";
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };
  const row = (dl, k, v) => { if (v === null || v === undefined || v === "") return; dl.append(el("dt", k), el("dd", String(v))); };
  const addr = (a) => a ? `${a.street} ${a.building}${a.flat ? "/" + a.flat : ""}, ${a.postal_code} ${a.city}` : "";

  function card(z) {
    const d = z.document, art = el("article", undefined, "ezla " + z.status);
    art.append(el("h2", `e-ZLA ${z.series} ${z.number}` + (z.status === "cancelled" ? " — ANULOWANE" : "")));
    const dl = el("dl");
    const id = d.patient.pesel ? `PESEL ${d.patient.pesel}` : `paszport ${d.patient.passport.country} ${d.patient.passport.number}`;
    row(dl, "Pacjent", `${d.patient.given_name} ${d.patient.family_name} (${id})`);
    row(dl, "Okres niezdolności", `${d.incapacity.from} – ${d.incapacity.to}`);
    if (d.incapacity.hospital) row(dl, "Pobyt w szpitalu", `${d.incapacity.hospital.from} – ${d.incapacity.hospital.to}`);
    row(dl, "Wskazanie", d.indication === 1 ? "1 – powinien leżeć" : "2 – może chodzić");
    row(dl, "Kody", (d.codes || []).join(", "));
    row(dl, "Rozpoznanie (ICD-10)", d.icd10);
    row(dl, "Adres pobytu", addr(d.patient.stay_address || d.patient.address));
    row(dl, "Płatnik", `${d.payer.name} (${d.payer.nip ? "NIP " + d.payer.nip : "PESEL " + d.payer.pesel})`);
    row(dl, "Lekarz", `${d.doctor.given_name} ${d.doctor.family_name} (NPWZ ${d.doctor.npwz})`);
    row(dl, "Placówka", `${d.clinic.name}, REGON ${d.clinic.regon}`);
    row(dl, "Data wystawienia", d.issue_date);
    row(dl, "Anulowano", z.cancelled_at);
    art.append(dl);
    return art;
  }

  async function load(token) {
    const status = document.getElementById("status"), list = document.getElementById("list");
    status.textContent = "Ładowanie…";
    const r = await fetch(api, { headers: { Authorization: "Bearer " + token } });
    const body = await r.json();
    if (!r.ok) { status.textContent = `Błąd ${r.status}: ${body.title || ""}`; return; }
    const latest = new Map();
    for (const item of body.items) { const z = item.ezla || item; latest.set(z.id, z); }
    const newestFirst = [...latest.values()].sort((a, b) => (a.accepted_at < b.accepted_at ? 1 : -1));
    list.replaceChildren(...newestFirst.map(card));
    status.textContent = latest.size ? `${latest.size} e-ZLA` : "Brak e-ZLA";
  }

  document.getElementById("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = document.getElementById("token").value.trim();
    sessionStorage.setItem(storageKey, token);
    load(token);
  });
  document.getElementById("print").addEventListener("click", () => window.print());
  const saved = sessionStorage.getItem(storageKey);
  if (saved) { document.getElementById("token").value = saved; load(saved); }
})();
