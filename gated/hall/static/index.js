"use strict";
// The start page: which page goes on which screen.
(() => {
  const { el, mount, ds } = H;
  const pages = [["/display", "叫号显示屏", "大厅电视或安卓盒子，无需登录"],
                 ["/counter", "窗口呼叫终端", "窗口工作人员电脑，工号+PIN 登录"],
                 ["/rate", "服务评价器", "面向群众的平板，由窗口工作人员登录"],
                 ["/guard", "门岗控制台", "门岗平板或电脑，保安登录"]];
  mount(el("section", { class: "index" }, el("h1", {}, ds.title),
    el("ul", {}, pages.map(([href, name, note]) => el("li", {}, el("a", { href }, name), el("span", {}, note))))));
})();
