// Live refresh of the overview, the dashboard's only script: every 15 s, while the box is ticked,
// fetch the page again and swap its <main>. Every page works without it.
(function () {
  const KEY = "planner-live";
  function bind() {
    const box = document.getElementById("live-refresh");
    if (!box) return;
    box.closest("label").hidden = false;
    box.checked = localStorage.getItem(KEY) === "1";
    box.onchange = () => localStorage.setItem(KEY, box.checked ? "1" : "0");
  }
  async function refresh() {
    if (localStorage.getItem(KEY) !== "1") return;
    try {
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (!response.ok || response.redirected) return;  // signed out: leave the page as it is
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("main");
      if (fresh) {
        document.getElementById("main").replaceWith(fresh);
        bind();
      }
    } catch (error) {
      // The server is briefly unreachable: try again at the next tick.
    }
  }
  bind();
  setInterval(refresh, 15000);
})();
