"use strict";
// Shared by every page of the hall: DOM building (text only, never HTML), JSON POSTs with the
// session's CSRF token, the live stream with reconnect and a visible connection state, and
// the sign-in form. Served by gated itself; no library, no CDN.
const H = (() => {
  const ds = document.body.dataset;
  const app = document.getElementById("app");
  window.hallState = { connected: false, daemonOk: false, views: 0 };

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function mount(...nodes) { app.replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false)); }

  async function post(url, body) {
    let r;
    try {
      r = await fetch(url, { method: "POST", credentials: "same-origin",
        headers: { "content-type": "application/json", "x-csrf-token": ds.csrf || "" },
        body: JSON.stringify(body) });
    } catch (e) {
      return { status: 0, ok: false, data: { reason: "offline", message: "网络连接中断" } };
    }
    let data = {};
    try { data = await r.json(); } catch (e) { data = {}; }
    if (r.status === 401 && ds.signin === "" && ds.role) { setTimeout(() => location.reload(), 1500); }
    return { status: r.status, ok: r.ok && data.ok !== false, data };
  }

  function action(name, args) { return post("/api/action", { action: name, args: args || {} }); }

  const REASONS = {
    nobody_waiting: "没有等候的号", no_current_ticket: "当前没有正在办理的号",
    counter_paused: "窗口已暂停，请先恢复", recall_limit: "重呼次数已满，请标记未到",
    wrong_pin: "PIN 错误", locked_out: "错误次数过多，已锁定，请稍后再试",
    daemon_unreachable: "岗亭主机无响应", busy: "主机忙，请重试", forbidden: "无权限",
    not_signed_in: "请先登录", session_expired: "登录已过期，请重新登录",
    csrf: "页面已过期，请刷新", already_rated: "该票已评价", not_served: "该票尚未办结",
    too_late: "已超过评价时限", unknown_ticket: "没有这张票", not_this_ticket: "请评价刚办结的票",
    too_many_requests: "操作过于频繁", counter_not_allowed: "不能登录此窗口",
    counter_required: "请选择窗口", offline: "网络连接中断",
  };
  function why(res) {
    const d = res.data || {};
    return REASONS[d.reason] || d.message || d.reason || ("错误 " + res.status);
  }

  let connEl = null;
  function connBanner() {
    if (!connEl) { connEl = el("div", { id: "conn", class: "conn", role: "status" }); document.body.prepend(connEl); }
    const s = window.hallState;
    const text = !s.connected ? "连接中断，正在重连…" : (!s.daemonOk ? "岗亭主机连接中断，正在重连…" : "");
    connEl.textContent = text;
    connEl.hidden = !text;
    document.body.classList.toggle("offline", Boolean(text));
  }

  // The live stream: EventSource reconnects by itself after a network error; when the server
  // answered with an error (the web process restarted and forgot the session) it does not, so
  // we look at why and either reload (to sign in again) or try again a little later.
  function live(page, handlers) {
    let es = null;
    function open() {
      es = new EventSource("/api/stream?page=" + encodeURIComponent(page));
      es.onopen = () => { window.hallState.connected = true; connBanner(); if (handlers.open) handlers.open(); };
      es.onerror = () => {
        window.hallState.connected = false; connBanner();
        if (es.readyState === EventSource.CLOSED) {
          setTimeout(async () => {
            try {
              const r = await fetch("/api/view?page=" + encodeURIComponent(page), { credentials: "same-origin" });
              if (r.status === 401 || r.status === 403) { location.reload(); return; }
            } catch (e) { /* still down */ }
            open();
          }, 2000);
        }
      };
      es.addEventListener("view", (ev) => {
        const v = JSON.parse(ev.data);
        window.hallState.daemonOk = Boolean(v.daemon_ok); window.hallState.views += 1;
        connBanner();
        if (handlers.view) handlers.view(v);
      });
      for (const [name, fn] of Object.entries(handlers)) {
        if (name !== "view" && name !== "open") es.addEventListener(name, (ev) => fn(JSON.parse(ev.data)));
      }
      es.addEventListener("signout", () => location.reload());
    }
    connBanner();
    open();
  }

  async function signin(role, title) {
    const msg = el("p", { class: "msg", role: "alert" });
    const user = el("input", { name: "user", autocomplete: "username", required: true, maxlength: 32 });
    const pin = el("input", { name: "pin", type: "password", inputmode: "numeric", autocomplete: "current-password", required: true, maxlength: 64 });
    const counter = el("select", { name: "counter" });
    const fields = [el("label", {}, "工号", user), el("label", {}, "PIN / 密码", pin)];
    if (role === "counter") {
      fields.push(el("label", {}, "窗口", counter));
      try {
        const r = await fetch("/api/info", { credentials: "same-origin" });
        for (const c of (await r.json()).counters) counter.append(el("option", { value: c.id }, c.name));
      } catch (e) { msg.textContent = "无法读取窗口列表"; }
    }
    const form = el("form", { class: "signin", onsubmit: async (ev) => {
      ev.preventDefault();
      const body = { user: user.value, pin: pin.value };
      if (role === "counter") body.counter = counter.value;
      const res = await post("/api/signin", body);
      if (res.ok) { location.reload(); return; }
      pin.value = ""; msg.textContent = why(res);
    } }, el("h1", {}, title), ...fields, el("button", { type: "submit", class: "primary" }, "登录"), msg);
    mount(form);
    user.focus();
  }

  async function signout() { await post("/api/signout", {}); location.reload(); }

  function minutesSince(iso) {
    if (!iso) return "";
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function clock(node) {
    const tick = () => { node.textContent = new Date().toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit" }); };
    tick(); setInterval(tick, 10000);
  }

  return { ds, el, mount, post, action, why, live, signin, signout, minutesSince, clock };
})();
