"use strict";
// The calling display (/display): the newest call large and blinking, the previous calls, the
// waiting per service, the hall's texts and the guard's notice line. Calls are announced one
// after the other, each whole: a new call waits for the one being spoken, a recall is spoken
// again. No personal data ever reaches this page (numbers, services and counters only).
(() => {
  const { el, mount, live, clock } = H;
  const S = { view: null, calls: [], queue: [], playing: false, blinkUntil: 0, resync: true, needClick: false };
  window.hallCalls = [];      // what was shown, in order (for tests and diagnosis)
  window.hallAnnounced = [];  // each play of each announcement: started, ended or error

  function callText(c) { return ["请 ", el("b", {}, c.number), " 号 到 ", el("b", {}, c.counter_name)]; }

  function render() {
    const v = S.view;
    if (!v) return;
    const latest = S.calls[0];
    const now = Date.now();
    const time = el("span", { class: "clock" }); clock(time);
    const head = el("header", { class: "d-head" }, el("h1", {}, v.hall.title), time);
    const big = el("section", { class: "d-latest" + (latest && now < S.blinkUntil ? " blink" : ""), "aria-live": "assertive" },
      latest ? [el("div", { class: "d-call", id: "latest" }, callText(latest)),
                el("div", { class: "d-svc" }, latest.service_name, latest.recall ? "（重呼）" : "")]
             : el("div", { class: "d-idle" }, "欢迎光临"));
    const prev = el("section", { class: "d-prev" }, el("h2", {}, "已呼叫"),
      el("ol", { id: "previous" }, S.calls.slice(1, 1 + 6).map((c) =>
        el("li", {}, el("span", { class: "num" }, c.number), el("span", {}, c.counter_name)))));
    const svcs = el("section", { class: "d-svcs" }, el("h2", {}, "等候情况"),
      el("table", {}, el("tbody", {}, v.services.map((s) =>
        el("tr", {}, el("th", {}, s.name), el("td", {}, s.waiting + " 人"),
           el("td", {}, s.waiting ? "约 " + s.wait_min + " 分钟" : "无需等候"))))));
    const info = el("footer", { class: "d-foot" },
      el("span", { class: "hot" }, v.hall.hotline), el("span", {}, v.hall.desk),
      v.hall.duty ? el("span", {}, "今日值班：", v.hall.duty) : null,
      v.hall.reception ? el("span", {}, "领导接访：", v.hall.reception) : null);
    const notice = v.notice ? el("div", { class: "d-notice" }, el("span", { id: "notice" }, v.notice)) : null;
    const sound = S.needClick ? el("button", { class: "d-sound", onclick: () => { S.needClick = false; render(); playNext(); } }, "点击开启语音播报") : null;
    mount(head, el("main", { class: "d-main" }, big, prev, svcs), notice, info, sound);
  }

  function onView(v) {
    S.view = v;
    const fromServer = v.calls || [];
    if (S.resync) {
      // on (re)connect: show what the daemon has; announce nothing already past
      S.resync = false;
      S.calls = fromServer.map((c) => ({ ...c }));
    }
    render();
  }

  function onCall(c) {
    S.calls = [c, ...S.calls.filter((x) => x.number !== c.number)].slice(0, 20);
    window.hallCalls.push({ id: c.id, number: c.number, counter: c.counter_name, recall: c.recall, shownAt: Date.now() });
    S.blinkUntil = Date.now() + (S.view ? S.view.hall.blink_s * 1000 : 5000);
    render();
    setTimeout(render, (S.view ? S.view.hall.blink_s * 1000 : 5000) + 50);
    if (c.audio) { S.queue.push(c); playNext(); }
  }

  // One announcement at a time, every repeat whole, then the next in arrival order.
  function playNext() {
    if (S.playing || S.needClick || !S.queue.length) return;
    const c = S.queue.shift();
    S.playing = true;
    let n = 0;
    const finish = () => { S.playing = false; setTimeout(playNext, 300); };
    const once = () => {
      const rec = { id: c.id, number: c.number, play: n + 1, url: c.audio, started: performance.now(), ended: null, error: null };
      window.hallAnnounced.push(rec);
      const audio = new Audio(c.audio);
      audio.onended = () => {
        rec.ended = performance.now(); n += 1;
        if (n < (c.repeat || 1)) setTimeout(once, 500); else finish();
      };
      audio.onerror = () => { rec.error = "load_failed"; finish(); };
      audio.play().catch((e) => {
        rec.error = String(e.name || e);
        if (e.name === "NotAllowedError") { S.needClick = true; S.queue.unshift(c); render(); S.playing = false; return; }
        finish();
      });
    };
    once();
  }

  live("display", { open: () => { S.resync = true; }, view: onView, call: onCall });
})();
