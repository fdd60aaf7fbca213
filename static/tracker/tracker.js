/*
 * refapp tracker, served minified at /t.js.
 *
 *   <script async src="https://REFAPP_HOST/t.js" data-program="SLUG"
 *           data-consent="required" data-params="via,aff" data-cookie-days="30"></script>
 *
 * Reads the affiliate code from the page URL, keeps a first-party visitor id cookie
 * (refapp_vid) and reports the click to the refapp host. Exposes window.refapp, fills
 * <input name="refapp_vid"> in form[data-refapp] and tags Stripe Payment Links / Checkout
 * links with client_reference_id, so Stripe-only merchants need no backend code.
 *
 * The server only strips whitespace and comments (no mangler), so names stay short-ish;
 * the minified file must stay under 2 KB gzipped. No dependencies, ES2017.
 */
((w, d) => {
  "use strict";
  // Two copies of the snippet on one page must not report the click twice.
  if (w.refapp && w.refapp.consent) return;

  const VID = "refapp_vid";
  const FORM = "form[data-refapp]";
  const LINK = "a[href^='https://buy.stripe.com/'],a[href^='https://checkout.stripe.com/']";

  // async scripts still see currentScript while they first run; the scan covers loaders
  // that inject the tag in ways that leave it null.
  const s = d.currentScript || Array.from(d.scripts).find((e) => /\/t\.js(\?|$)/.test(e.src));
  if (!s) return;

  const ds = s.dataset;
  const base = new URL(s.src).origin;
  const days = parseInt(ds.cookieDays, 10) > 0 ? parseInt(ds.cookieDays, 10) : 30;
  const q = new URLSearchParams(location.search);

  // The code: ?ref= first, then the program's extra parameter names, in the given order.
  // Codes and visitor ids are [A-Za-z0-9_-] on the server too, so anything else is not ours
  // and is ignored; that also keeps every cookie value safe without escaping.
  let code = null;
  for (const n of ("ref," + (ds.params || "")).split(",")) {
    const v = (q.get(n.trim()) || "").trim();
    if (/^[\w-]{1,64}$/.test(v)) {
      code = v;
      break;
    }
  }

  // Put there by the /go/ redirect, which has already recorded the click.
  let urlVid = q.get(VID);
  if (!/^[\w-]{8,64}$/.test(urlVid || "")) urlVid = null;

  const waiting = [];
  const api = (w.refapp = {
    visitorId: null,
    referral: code,
    ready: (cb) => (api.visitorId ? cb(api) : waiting.push(cb)),
    consent: () => api.visitorId || start(),
  });

  // A value of `min` to 64 id characters, or null: a tampered cookie is replaced, not sent.
  const getCookie = (n, min) =>
    (d.cookie.match(new RegExp("(?:^|; )" + n + "=([\\w-]{" + min + ",64})(?:;|$)")) || [])[1] || null;

  const setCookie = (n, v) => {
    d.cookie =
      n + "=" + v + ";path=/;max-age=" + days * 86400 + ";SameSite=Lax" +
      (location.protocol == "https:" ? ";Secure" : "");
  };

  // 22 letters of a 64-letter alphabet: 132 random bits, usable as a Stripe
  // client_reference_id, a cookie value and a URL parameter without escaping.
  const newId = () => {
    const a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    return Array.from(crypto.getRandomValues(new Uint8Array(22)), (b) => a[b & 63]).join("");
  };

  // text/plain keeps both paths "simple" requests: no CORS preflight round trip before
  // the visitor navigates away. sendBeacon returns false when the browser refuses to queue.
  const send = (body) => {
    const url = base + "/api/v1/track/click";
    try {
      if (navigator.sendBeacon(url, new Blob([body], { type: "text/plain" }))) return;
    } catch (e) {}
    fetch(url, {
      method: "POST", keepalive: true, credentials: "omit", body,
      headers: { "Content-Type": "text/plain" },
    }).catch(() => {});
  };

  // Fill forms and tag Stripe links inside one subtree, the root included.
  const scan = (root) => {
    if (!root.querySelectorAll) return; // text and comment nodes
    const els = Array.from(root.querySelectorAll(FORM + "," + LINK));
    if (root.matches) els.push(root);
    for (const el of els) {
      if (el.matches(FORM)) {
        let inp = el.querySelector("input[name=" + VID + "]");
        if (!inp) {
          inp = d.createElement("input");
          inp.type = "hidden";
          inp.name = VID;
          el.appendChild(inp);
        }
        inp.value = api.visitorId;
      } else if (el.matches(LINK)) {
        const u = new URL(el.href);
        // A merchant that sets its own client_reference_id keeps it.
        if (!u.searchParams.has("client_reference_id")) {
          u.searchParams.set("client_reference_id", api.visitorId);
          el.href = u;
        }
      }
    }
  };

  const start = () => {
    const vid = urlVid || getCookie(VID, 8) || newId();
    api.visitorId = vid;
    // Later pages of the visit still know who referred it, e.g. to prefill a coupon.
    api.referral = code || getCookie("refapp_ref", 1);
    setCookie(VID, vid); // on every visit, so the expiry slides

    if (urlVid) {
      // Out of the address bar: a copied URL must not hand this visitor id to whoever
      // opens it.
      q.delete(VID);
      const qs = "" + q;
      try {
        history.replaceState(history.state, "", location.pathname + (qs && "?" + qs) + location.hash);
      } catch (e) {}
    }

    if (code) {
      setCookie("refapp_ref", code);
      // refapp_vid next to the same ref means we came through /go/, which has already
      // recorded this click server-side.
      if (!(urlVid && q.get("ref") == code)) {
        send(JSON.stringify({
          program: ds.program, ref: code, visitor_id: vid, url: location.href, referrer: d.referrer,
        }));
      }
    }

    // Parser-inserted and script-inserted nodes both arrive as childList mutations, so
    // one observer covers the rest of the page load and single-page apps alike. Only
    // added subtrees are scanned, never the whole document again.
    scan(d);
    new MutationObserver((ms) => ms.forEach((m) => m.addedNodes.forEach(scan))).observe(
      d.documentElement, { childList: true, subtree: true }
    );

    waiting.splice(0).forEach((cb) => cb(api));
  };

  if (ds.consent != "required") start();
})(window, document);
