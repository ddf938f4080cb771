"use strict";
// The ticket QR's rating page (/r?t=<ticket id>), on the citizen's phone on the hall's Wi-Fi:
// the same five levels and reason tags as the pad, the same kind of rating event.
(() => {
  const { el, mount, post, why } = H;
  const ticket = new URLSearchParams(location.search).get("t") || "";
  const S = { level: null, reason: null, msg: "", reasons: [], levels: [] };
  function render() {
    if (!/^[0-9A-Za-z]{1,40}$/.test(ticket)) { mount(el("p", { class: "msg" }, "二维码无效")); return; }
    mount(el("section", { class: "p-rate" }, el("h1", {}, "服务评价"),
      el("div", { class: "p-levels" }, S.levels.map(({ id, label }) =>
        el("button", { class: "lvl " + id + (S.level === id ? " chosen" : ""), "data-level": id, onclick: () => { S.level = id; render(); } }, label))),
      S.level ? el("div", { class: "p-reasons" }, S.reasons.map((r) =>
        el("button", { class: "tag" + (S.reason === r ? " chosen" : ""), onclick: () => { S.reason = S.reason === r ? null : r; render(); } }, r))) : null,
      S.level ? el("button", { class: "primary big", id: "submit-rating", onclick: send }, "提交评价") : null,
      el("p", { class: "msg", id: "qr-msg", role: "status" }, S.msg)));
  }
  async function send() {
    const body = { ticket_id: ticket, level: S.level };
    if (S.reason) body.reason = S.reason;
    const res = await post("/api/rate-qr", body);
    S.msg = res.ok ? "感谢您的评价！" : why(res);
    render();
  }
  fetch("/api/info").then((r) => r.json()).then((info) => {
    S.levels = info.levels; S.reasons = info.reasons; render();
  }).catch(() => { S.msg = "网络连接中断，请稍后再试"; render(); });
})();
