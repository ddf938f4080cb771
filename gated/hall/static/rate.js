"use strict";
// The rating pad (/rate): a tablet facing the citizen at a counter, signed in by its clerk.
// After "served" it shows the five 好差评 levels for that ticket, an optional reason tag, and
// goes back to idle after rating.pad_timeout_s.
(() => {
  const { ds, el, mount, post, why, live, signin } = H;
  if (ds.signin) { signin("counter", "评价器登录（由窗口工作人员登录）"); return; }
  const S = { view: null, ticket: null, level: null, reason: null, until: 0, done: "" };
  let timer = null;

  function idle(text) {
    S.ticket = null; S.level = null; S.reason = null; S.done = text || "";
    render();
  }
  function render() {
    const v = S.view;
    if (!v) { mount(el("p", {}, "连接中…")); return; }
    if (!S.ticket) {
      mount(el("section", { class: "p-idle" }, el("h1", {}, v.title), el("p", { id: "pad-state" }, S.done || "欢迎光临，办结后请为本次服务评价")));
      return;
    }
    const t = S.ticket;
    const levels = el("div", { class: "p-levels" }, v.levels.map((l) =>
      el("button", { class: "lvl " + l.id + (S.level === l.id ? " chosen" : ""), "data-level": l.id, onclick: () => { S.level = l.id; render(); } }, l.label)));
    const reasons = S.level ? el("div", { class: "p-reasons" }, el("p", {}, "原因（可选）"),
      v.reasons.map((r) => el("button", { class: "tag" + (S.reason === r ? " chosen" : ""), "data-reason": r, onclick: () => { S.reason = S.reason === r ? null : r; render(); } }, r))) : null;
    const submit = S.level ? el("button", { class: "primary big", id: "submit-rating", onclick: submitRating }, "提交评价") : null;
    mount(el("section", { class: "p-rate" }, el("h1", {}, "请为本次服务评价"),
      el("p", { class: "p-ticket", id: "pad-ticket" }, t.number), levels, reasons, submit,
      el("p", { class: "msg", id: "pad-msg", role: "status" }, S.done)));
  }
  async function submitRating() {
    const body = { ticket_id: S.ticket.ticket_id, level: S.level };
    if (S.reason) body.reason = S.reason;
    const res = await post("/api/rate", body);
    window.hallLastReply = { action: "rate", ok: res.ok, status: res.status, data: res.data };
    if (res.ok) idle("感谢您的评价！"); else { S.done = why(res); render(); }
  }
  function onServed(t) {
    if (!S.view) return;
    S.ticket = t; S.level = null; S.reason = null; S.done = "";
    clearTimeout(timer);
    timer = setTimeout(() => idle(""), S.view.timeout_s * 1000);
    render();
  }
  live("pad", { view: (v) => { S.view = v; render(); }, served: onServed,
                rated: (r) => { if (S.ticket && r.ticket_id === S.ticket.ticket_id) idle("感谢您的评价！"); } });
})();
