// Shows which snapshot served this page (the gateway names it in a response header).
fetch(location.href, { method: "HEAD" })
  .then((r) => {
    const id = r.headers.get("X-Peerweb-Snapshot");
    document.getElementById("version").textContent = id ? id.slice(0, 12) : "unknown";
  })
  .catch(() => {});
