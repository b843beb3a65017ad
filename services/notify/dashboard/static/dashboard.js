/* The live feed: new and changed alerts arrive over Server-Sent Events (/events) and are listed
   beside the page; on an alert's own page a notice says it changed. The pages work without this
   script; it only adds. Text is set with textContent, never as HTML. */
(function () {
  "use strict";
  var body = document.body;
  var since = body.getAttribute("data-live-since");
  var feed = document.getElementById("live-feed");
  if (!since || !feed || !window.EventSource) {
    return;
  }
  var current = body.getAttribute("data-alert");
  var levels = { ok: 1, watch: 1, threatened: 1, critical: 1 };
  var source = new EventSource("/events?since=" + encodeURIComponent(since));
  source.addEventListener("alert", function (event) {
    var data;
    try {
      data = JSON.parse(event.data);
    } catch (problem) {
      return;
    }
    var item = document.createElement("li");
    item.className = "live-item";
    var badge = document.createElement("span");
    badge.className = "level level-" + (levels[data.level] ? data.level : "watch");
    badge.setAttribute("aria-hidden", "true");
    badge.textContent = data.icon;
    var link = document.createElement("a");
    link.href = data.url;
    link.textContent = data.text;
    var when = document.createElement("span");
    when.className = "when";
    when.textContent = " · " + data.at;
    item.appendChild(badge);
    item.appendChild(document.createTextNode(" "));
    item.appendChild(link);
    item.appendChild(when);
    feed.insertBefore(item, feed.firstChild);
    while (feed.children.length > 20) {
      feed.removeChild(feed.lastChild);
    }
    var empty = document.querySelector(".live-empty");
    if (empty) {
      empty.hidden = true;
    }
    if (current && data.alert === current) {
      var notice = document.getElementById("changed-notice");
      if (notice) {
        notice.hidden = false;
      }
    }
  });
})();
