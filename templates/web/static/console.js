// The console's only script (the CSP allows no inline code): photo zoom
// and rotation, keyboard shortcuts in the queue and on a request (each
// decision confirmed in a dialog), reason templates, and a confirmation
// before decisions. Every page works without it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Photos: zoom and rotate, kept per photo.
  for (const fig of document.querySelectorAll("figure.photo")) {
    const img = fig.querySelector("img");
    if (!img) continue;
    let scale = 1, turn = 0;
    const apply = () => { img.style.transform = `rotate(${turn}deg) scale(${scale})`; };
    fig.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-photo]");
      if (!b) return;
      if (b.dataset.photo === "zoom-in") scale = Math.min(scale * 1.5, 8);
      if (b.dataset.photo === "zoom-out") scale = Math.max(scale / 1.5, 0.25);
      if (b.dataset.photo === "rotate") turn = (turn + 90) % 360;
      if (b.dataset.photo === "reset") { scale = 1; turn = 0; }
      apply();
    });
    img.addEventListener("dblclick", () => { scale = scale > 1 ? 1 : 2.5; apply(); });
  }

  // Queue: j/k move, Enter opens, / searches.
  const rows = Array.from(document.querySelectorAll("table.queue tr[data-href]"));
  let at = -1;
  const select = (i) => {
    if (!rows.length) return;
    if (at >= 0) rows[at].classList.remove("selected");
    at = Math.max(0, Math.min(rows.length - 1, i));
    rows[at].classList.add("selected");
    rows[at].scrollIntoView({ block: "nearest" });
  };
  document.addEventListener("keydown", (e) => {
    const typing = e.target.matches("input, textarea, select");
    if (e.key === "/" && !typing) {
      const s = document.getElementById("search");
      if (s) { e.preventDefault(); s.focus(); }
      return;
    }
    if (typing || !rows.length || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "j" || e.key === "ArrowDown") { e.preventDefault(); select(at + 1); }
    if (e.key === "k" || e.key === "ArrowUp") { e.preventDefault(); select(at - 1); }
    if ((e.key === "Enter" || e.key === "o") && at >= 0) { window.location = rows[at].dataset.href; }
    // n: the next request to review is the queue's first.
    if (e.key === "n") { window.location = rows[0].dataset.href; }
  });

  // Reject: a reason template fills the editable text.
  const tpl = document.getElementById("reason-template");
  const reason = document.getElementById("reason");
  if (tpl && reason) tpl.addEventListener("change", () => { reason.value = tpl.value; });

  // Request page: a approves, r rejects, m asks for more, n opens the
  // next request; each asks in a dialog first (Enter confirms, Escape
  // does not). Not while the operator types in a field.
  const dialog = document.getElementById("shortcut-dialog");
  if (dialog) {
    let pending = null;
    const ask = (text, then) => {
      pending = then;
      document.getElementById("shortcut-text").textContent = text;
      dialog.showModal();
      document.getElementById("shortcut-yes").focus();
    };
    document.getElementById("shortcut-yes").addEventListener("click", () => {
      const then = pending;
      pending = null;
      dialog.close();
      if (then) then();
    });
    document.getElementById("shortcut-no").addEventListener("click", () => { pending = null; dialog.close(); });
    dialog.addEventListener("close", () => { pending = null; });
    const submit = (form) => () => form.requestSubmit();
    document.addEventListener("keydown", (e) => {
      if (dialog.open || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.target.matches("input, textarea, select, [contenteditable]")) return;
      const form = document.querySelector(`form[data-shortcut="${e.key}"]`);
      if (e.key === "n") {
        const next = document.getElementById("next-request");
        if (next) { e.preventDefault(); ask(`Sang yêu cầu tiếp theo ${next.textContent}?`, () => { window.location = next.href; }); }
        return;
      }
      if (!form) return;
      e.preventDefault();
      const button = form.querySelector("button[type=submit]");
      if (!button || button.disabled) return;
      if (e.key === "a") {
        const account = form.querySelector("input[name=account]:checked");
        ask(`${button.dataset.confirm} Tài khoản: ${account ? account.value : "—"}.`, submit(form));
      } else if (e.key === "r") {
        ask(`${button.dataset.confirm} Lý do: “${form.querySelector("textarea").value}”`, submit(form));
      } else if (e.key === "m") {
        const message = form.querySelector("textarea");
        if (!message.value.trim()) { message.focus(); return; }
        ask(`${button.dataset.shortcutText} “${message.value}”`, submit(form));
      }
    });
  }

  // Decisions ask once more.
  for (const b of document.querySelectorAll("button[data-confirm]")) {
    b.form.addEventListener("submit", (e) => {
      if (e.submitter === b && !window.confirm(b.dataset.confirm)) e.preventDefault();
    });
  }
});
