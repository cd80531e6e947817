/* closedloop first-party tracking (docs/tracking.md).
   <script async src="https://YOUR-CLOSEDLOOP/t/closedloop.js" data-site-key="cls_..."></script> */
(function (w, d) {
  "use strict";
  var me = d.currentScript;
  if (!me || w.closedloop) return;
  var key = me.getAttribute("data-site-key");
  var base = new URL(me.src).origin;
  var n = w.navigator;
  var dnt = n.globalPrivacyControl === true || n.doNotTrack === "1" || w.doNotTrack === "1";
  var VK = "_clv", LK = "_cll", RK = "_clr";
  function store(k, v) { try { if (v === undefined) return localStorage.getItem(k); localStorage.setItem(k, v); } catch (e) { return null; } }
  function sess(k, v) { try { if (v === undefined) return sessionStorage.getItem(k); sessionStorage.setItem(k, v); } catch (e) { return null; } }
  function cookie(k, v) {
    if (v === undefined) { var m = d.cookie.match(new RegExp("(?:^|; )" + k + "=([^;]*)")); return m ? m[1] : null; }
    d.cookie = k + "=" + v + "; path=/; max-age=31536000; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
  }
  function rid() {
    var b = new Uint8Array(16); (w.crypto || w.msCrypto).getRandomValues(b);
    var s = ""; for (var i = 0; i < b.length; i++) s += ("0" + b[i].toString(16)).slice(-2);
    return "v1_" + s;
  }
  var visitor = null;
  if (!dnt) {
    visitor = cookie(VK) || store(VK);
    if (!visitor || !/^[A-Za-z0-9_-]{16,64}$/.test(visitor)) visitor = rid();
    cookie(VK, visitor); store(VK, visitor);
  }
  // The session's landing page names its campaign; a new one with UTM or a click ID replaces it.
  var here = location.href;
  var marks = /[?&](utm_[a-z]+|gclid|fbclid|li_fat_id|msclkid)=/i;
  if (!sess(LK) || marks.test(here)) { sess(LK, here); sess(RK, d.referrer || ""); }
  var landing = sess(LK), referrer = sess(RK);
  function post(path, body) {
    var text = JSON.stringify(body);
    try {
      return fetch(base + path, { method: "POST", body: text, keepalive: true, mode: "cors", credentials: "omit", headers: { "Content-Type": "text/plain" } });
    } catch (e) { if (n.sendBeacon) n.sendBeacon(base + path, text); return Promise.resolve(); }
  }
  var seq = 0;
  function track(name, opts) {
    opts = opts || {};
    var e = { n: name, u: opts.url || location.href };
    if (visitor) e.id = visitor.slice(-8) + Date.now().toString(36) + (seq++).toString(36);
    if (opts.campaignId) e.c = opts.campaignId;
    return post("/t/e", { k: key, v: visitor, l: landing, r: referrer, dnt: dnt, e: [e] });
  }
  function identify(email, fields, token) {
    if (dnt || !visitor) return Promise.resolve();
    return post("/t/identify", { k: key, v: visitor, email: email || null, t: token || null, fields: fields || {}, u: location.href, l: landing, dnt: false });
  }
  // A personal mailing link brings its token along: it names the lead.
  var m = here.match(/[?&]cl_t=([A-Za-z0-9_-]+)/);
  if (m) {
    identify(null, null, m[1]);
    try { var u = new URL(here); u.searchParams.delete("cl_t"); history.replaceState(history.state, "", u.toString()); } catch (e) {}
  }
  var MAP = { firstname: "firstName", first_name: "firstName", lastname: "lastName", last_name: "lastName", jobtitle: "jobTitle", job_title: "jobTitle", phone: "phone", country: "country" };
  d.addEventListener("submit", function (ev) {
    var f = ev.target, email = null, fields = {};
    if (!f || !f.elements) return;
    for (var i = 0; i < f.elements.length; i++) {
      var el = f.elements[i], nm = (el.getAttribute("data-cl-field") || el.name || "").toLowerCase();
      if (!el.value) continue;
      if (el.type === "email" || nm === "email") email = email || el.value;
      else if (MAP[nm]) fields[MAP[nm]] = el.value;
    }
    if (email) identify(email, fields);
  }, true);
  d.addEventListener("click", function (ev) {
    var a = ev.target && ev.target.closest && ev.target.closest("a[href]");
    if (a && /\.(pdf|zip|docx?|xlsx?|pptx?)(\?|#|$)/i.test(a.href)) track("download", { url: a.href });
  }, true);
  w.closedloop = { track: track, identify: function (email, fields) { return identify(email, fields); }, visitorId: visitor, ready: track("page_view") };
})(window, document);
