"use strict";
// The counter terminal (/counter): the clerk's calling pad. Call next, recall, served, no-show,
// transfer, pause/resume, on the keys 1-6 of a USB numeric keypad (a calling pad; the top-row
// digits work too; F-keys are not used: browsers keep F5, F6 and others for themselves). The counter
// is the session's: the server never takes it from the page.
(() => {
  const { ds, el, mount, action, why, live, signin, signout, minutesSince } = H;
  if (ds.signin) { signin("counter", "窗口登录"); return; }
  const S = { view: null, msg: "", busy: false };
  const me = () => (S.view && S.view.counters[ds.counter]) || { name: ds.counter + "号窗口", services: [], paused: false, current: null };

  async function run(name, args, okText) {
    if (S.busy) return;
    S.busy = true; render();
    const res = await action(name, args);
    S.busy = false;
    const t = res.data && res.data.ticket;
    S.msg = res.ok ? okText(t, res.data) : "未完成：" + H.why(res);
    S.ok = res.ok;
    window.hallLastReply = { action: name, ok: res.ok, status: res.status, data: res.data };
    render();
  }
  const ACTIONS = [
    ["1", "呼叫下一位", () => run("call_next", {}, (t) => t ? "已呼叫 " + t.number : "没有等候的号")],
    ["2", "重呼", () => run("recall", {}, (t) => "已重呼 " + t.number)],
    ["3", "办结", () => run("served", {}, (t) => t.number + " 已办结，请评价")],
    ["4", "未到", () => run("no_show", {}, (t) => t.number + " 标记未到")],
    ["5", "转移", () => transfer()],
    ["6", "暂停/恢复", () => me().paused ? run("resume", {}, () => "窗口已恢复") : run("pause", {}, () => "窗口已暂停")],
  ];

  function transfer() {
    const sel = document.getElementById("transfer-to");
    if (!sel || !sel.value) { S.msg = "请选择转移到的业务"; render(); return; }
    run("transfer", { service: sel.value }, (t) => t.number + " 已转至 " + sel.selectedOptions[0].textContent);
  }

  function render() {
    const v = S.view;
    const c = me();
    const cur = c.current;
    const head = el("header", { class: "c-head" }, el("h1", {}, c.name),
      el("span", { class: c.paused ? "tag paused" : "tag open", id: "counter-state" }, c.paused ? "暂停服务" : "服务中"),
      el("span", { class: "who" }, "工号 " + ds.user), el("button", { onclick: signout }, "退出"));
    const current = el("section", { class: "c-current" },
      el("h2", {}, "当前办理"),
      cur ? [el("div", { class: "c-num", id: "current-number" }, cur.number),
             el("div", {}, cur.service_name),
             el("div", { class: "c-wait" }, "已等候 ", el("span", { "data-since": cur.issued_at }, minutesSince(cur.issued_at)),
                "，叫号后 ", el("span", { "data-since": cur.called_at }, minutesSince(cur.called_at))),
             cur.recalls ? el("div", {}, "已重呼 " + cur.recalls + " 次") : null]
          : el("div", { class: "c-none", id: "current-number" }, "—"));
    const buttons = el("section", { class: "c-pad" }, ACTIONS.map(([key, label, fn], i) =>
      el("button", { class: i === 0 ? "primary big" : "big", id: "btn-" + key, disabled: S.busy || !v || !v.daemon_ok, onclick: fn },
        label, el("kbd", {}, key))));
    const options = v ? v.services.map((s) => el("option", { value: s.id }, s.name)) : [];
    const xfer = el("label", { class: "c-xfer" }, "转移到 ", el("select", { id: "transfer-to" }, el("option", { value: "" }, "选择业务"), options));
    const mine = new Set(c.services);
    const svcs = el("section", { class: "c-svcs" }, el("h2", {}, "等候"),
      el("table", {}, el("tbody", {}, (v ? v.services : []).map((s) =>
        el("tr", { class: mine.has(s.id) ? "mine" : "" }, el("th", {}, s.name), el("td", { "data-service": s.id }, s.waiting + " 人"))))));
    mount(head, el("main", { class: "c-main" }, current, el("div", {}, buttons, xfer,
      el("p", { class: "msg" + (S.ok ? " ok" : ""), id: "msg", role: "status" }, S.msg)), svcs));
  }

  document.addEventListener("keydown", (ev) => {
    if (ev.target && ["INPUT", "SELECT", "TEXTAREA"].includes(ev.target.tagName)) return;
    const i = ACTIONS.findIndex(([key]) => key === ev.key);  // top row and keypad alike
    if (i >= 0 && !ev.ctrlKey && !ev.altKey && !ev.metaKey) { ev.preventDefault(); ACTIONS[i][2](); }
  });
  setInterval(() => { for (const n of document.querySelectorAll("[data-since]")) n.textContent = minutesSince(n.dataset.since); }, 1000);
  live("counter", { view: (v) => { S.view = v; render(); } });
})();
