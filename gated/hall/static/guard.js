"use strict";
// The guard console (/guard): live alarms with sound, assistance requests and escalations with
// one-tap acknowledge, reprints to hand out, manual tickets, guests, the display's notice line,
// gates and zone modes (the PIN is asked again), device and uplink health.
(() => {
  const { ds, el, mount, action, why, live, signin, signout } = H;
  if (ds.signin) { signin("guard", "门岗登录"); return; }
  const admin = ds.role === "admin";
  const S = { view: null, msg: "", pinFor: null, draft: null };
  const chime = new Audio("/static/chime.wav");
  window.hallRings = 0;
  const KINDS = { see_guard: "请保安核实", tailgating: "尾随通行", jam: "闸机卡住", forced: "闸机被强行打开",
    held_open: "闸机长时间未关", fire: "火警", fire_reported: "火警（未联动）", printer_paper_out: "打印机缺纸",
    printer_cover_open: "打印机盖打开", device_offline: "设备离线", assist_unanswered: "协助请求无人应答",
    repeated_denials: "多次被拒", device_command_failed: "设备指令失败" };
  const MODES = { normal: "正常", free_passage: "常开", locked: "锁闭" };
  const STATES = { ready: "正常", unknown: "状态未知", connecting: "连接中", degraded: "故障", offline: "离线", disabled: "未启用" };
  const LEVELS = { very_satisfied: "非常满意", satisfied: "满意", basic: "基本满意", dissatisfied: "不满意", very_dissatisfied: "非常不满意" };
  const TYPES = { "assist.request": "协助请求", "assist.ack": "协助已确认", escalation: "办不成事找局长",
    callback: "差评回访", alarm: "报警", "printer.status": "打印机", "ticket.reprint": "补打小票",
    "storage.error": "存储故障", security: "安全" };

  async function run(name, args, okText) {
    const res = await action(name, args);
    window.hallLastReply = { action: name, ok: res.ok, status: res.status, data: res.data };
    S.msg = res.ok ? okText : "未完成：" + why(res);
    S.ok = res.ok;
    render();
    return res;
  }

  function cases(title, list, buttons) {
    return el("section", { class: "g-box" }, el("h2", {}, title, " ", el("span", { class: "count" }, String(list.length))),
      list.length ? el("ul", {}, list.map((c) => el("li", { "data-case": c.case_id },
        el("span", { class: "num" }, c.number || c.zone || "—"), el("span", {}, c.state === "open" ? "待处理" : c.state),
        c.raises > 1 ? el("span", { class: "tag warn" }, "第" + c.raises + "次提醒") : null, buttons(c)))) : el("p", { class: "quiet" }, "无"));
  }

  function pinDialog() {
    if (!S.pinFor) return null;
    const pin = el("input", { type: "password", id: "pin-again", inputmode: "numeric", autocomplete: "current-password", maxlength: 64 });
    setTimeout(() => pin.focus(), 0);
    const go = async (ev) => {
      ev.preventDefault();
      const { name, args, label } = S.pinFor;
      S.pinFor = null;
      await run(name, { ...args, pin: pin.value }, label + " 已执行");
    };
    return el("form", { class: "g-pin", onsubmit: go }, el("p", {}, "请再次输入 PIN 以确认：", S.pinFor.label),
      pin, el("button", { type: "submit", class: "primary" }, "确认"), el("button", { type: "button", onclick: () => { S.pinFor = null; render(); } }, "取消"));
  }

  function render() {
    const v = S.view;
    if (!v) return;
    const dev = Object.entries(v.devices).map(([n, d]) => el("li", { class: "dev " + d.state }, n + "：" + (STATES[d.state] || d.state) + (d.reason && d.reason !== "ok" ? "（" + d.reason + "）" : "")));
    const up = v.uplink.enabled ? (v.uplink.connected ? "县平台已连接" : "县平台未连接") : "未配置县平台";
    const health = el("section", { class: "g-box g-health" }, el("h2", {}, "设备与上传"),
      el("ul", {}, dev, el("li", {}, up + "，待上传 " + (v.uplink.backlog ?? "?") + " 条"),
        v.storage_ok === false ? el("li", { class: "dev offline" }, "存储故障") : null));
    const alerts = el("section", { class: "g-box g-alerts" }, el("h2", {}, "报警与提醒"),
      el("ol", { id: "alerts" }, v.alerts.slice(0, 15).map((a) => el("li", { class: "al " + a.type },
        el("time", {}, (a.ts || "").slice(11, 19)), el("b", {}, TYPES[a.type] || a.type), " ",
        KINDS[a.kind] || a.kind || a.state || "", a.number ? " " + a.number : "", a.device ? " @" + a.device : ""))));
    const assists = cases("协助请求", v.assists, (c) => el("button", { class: "primary", "data-ack": c.case_id,
      onclick: () => run("assist_ack", { case_id: c.case_id }, "已确认协助请求") }, "确认"));
    const escal = cases("办不成事找局长", v.escalations, (c) => [
      c.state === "open" ? el("button", { class: "primary", onclick: () => run("escalation_ack", { case_id: c.case_id }, "已确认") }, "确认") : null,
      admin ? el("button", { onclick: () => { const o = prompt("结案结果"); if (o) run("escalation_close", { case_id: c.case_id, outcome: o }, "已结案"); } }, "结案") : null]);
    const callbacks = admin ? cases("差评回访", v.callbacks, (c) => [
      c.state === "open" ? el("button", { onclick: () => run("callback_ack", { case_id: c.case_id }, "已受理") }, "受理") : null,
      c.state !== "called_back" ? el("button", { onclick: () => run("callback_done", { case_id: c.case_id, note: prompt("回访记录") || "" }, "已回访") }, "已回访") : null,
      el("button", { onclick: () => { const o = prompt("结案结果"); if (o) run("callback_close", { case_id: c.case_id, outcome: o }, "已结案"); } }, "结案")]) : null;
    const reprints = el("section", { class: "g-box" }, el("h2", {}, "待补打小票"),
      v.reprints.length ? el("ul", {}, v.reprints.map((r) => el("li", {}, el("span", { class: "num" }, r.number),
        el("button", { onclick: () => run("reprint_handed", { ticket: r.ticket_id }, r.number + " 已手写补发") }, "已手写补发")))) : el("p", { class: "quiet" }, "无"));
    const svc = el("select", { id: "manual-service" }, v.services.map((s) => el("option", { value: s.id }, s.name)));
    const prio = el("select", { id: "manual-priority" }, [["", "普通"], ["elderly", "老年人优先"], ["assist", "需要协助"], ["military", "军人优先"], ["guard", "保安判断优先"]].map(([val, t]) => el("option", { value: val }, t)));
    const manual = el("section", { class: "g-box" }, el("h2", {}, "人工取号"), svc, prio,
      el("button", { class: "primary", id: "manual-ticket", onclick: () => { const a = { service: svc.value }; if (prio.value) a.priority = prio.value; run("manual_ticket", a, "已出号"); } }, "出号"));
    const zones = Object.keys(v.zones);
    const gz = el("select", { id: "guest-zone" }, zones.map((z) => el("option", { value: z }, (v.zone_names && v.zone_names[z]) || z)));
    const gm = el("input", { id: "guest-minutes", type: "number", min: 1, max: 1440, value: 120 });
    const guest = el("section", { class: "g-box" }, el("h2", {}, "访客登记"), gz, gm, "分钟",
      el("button", { onclick: () => run("register_guest", { zone: gz.value, minutes: Number(gm.value) }, "请访客刷身份证") }, "登记下一位刷卡者"));
    const nt = el("input", { id: "notice-text", maxlength: 200, placeholder: "只写通知，不写任何人的姓名", value: S.draft ?? v.notice, oninput: (e) => { S.draft = e.target.value; } });
    const notice = el("section", { class: "g-box" }, el("h2", {}, "显示屏通知"), nt,
      el("button", { class: "primary", id: "notice-set", onclick: () => { S.draft = null; run("set_notice", { text: nt.value }, "通知已发布"); } }, "发布"),
      el("button", { onclick: () => { S.draft = null; run("set_notice", { text: "" }, "通知已清除"); } }, "清除"));
    const gates = el("section", { class: "g-box" }, el("h2", {}, "闸机与区域"), el("ul", {}, zones.map((z) => el("li", {},
      el("b", {}, (v.zone_names && v.zone_names[z]) || z), " 当前：" + (MODES[v.zones[z]] || v.zones[z]) + " ",
      el("button", { onclick: () => { S.pinFor = { name: "open_gate", args: { zone: z }, label: "开闸 " + z }; render(); } }, "开闸"),
      ["normal", "free_passage", "locked"].filter((m) => m !== v.zones[z]).map((m) =>
        el("button", { onclick: () => { S.pinFor = { name: "set_zone_mode", args: { zone: z, mode: m }, label: z + " 改为" + MODES[m] }; render(); } }, "改为" + MODES[m]))))));
    const rated = Object.entries(v.ratings_today).map(([k, n]) => (LEVELS[k] || k) + " " + n).join("，") || "暂无";
    mount(el("header", { class: "g-head" }, el("h1", {}, "门岗控制台"), el("span", { class: "who" }, (admin ? "管理员 " : "保安 ") + ds.user),
        el("button", { onclick: signout }, "退出")),
      pinDialog(), el("p", { class: "msg" + (S.ok ? " ok" : ""), id: "msg", role: "status" }, S.msg),
      el("main", { class: "g-main" }, alerts, assists, escal, callbacks, reprints, manual, guest, notice, gates, health,
        el("section", { class: "g-box" }, el("h2", {}, "今日评价"), el("p", {}, rated))));
  }

  function ring(a) {
    if (a.type === "assist.ack" || a.type === "printer.status" && !a.paper) return;
    window.hallRings += 1;
    chime.currentTime = 0;
    chime.play().catch(() => {});
  }
  live("guard", { view: (v) => { S.view = v; if (!S.pinFor) render(); }, alert: (a) => { ring(a); } });
})();
