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
 * Friend rewards: when the click's answer carries the referring affiliate's coupon
 * ({"code", "label"}), it is kept in a first-party cookie (refapp_cpn) for later pages of
 * the visit and exposed as window.refapp.coupon; <input name="refapp_coupon"> is filled in
 * form[data-refapp], Stripe links get prefilled_promo_code, and elements marked
 * data-refapp-reward show the label.
 *
 * The server only strips whitespace and comments (no mangler), so names stay short-ish;
 * the minified file must stay under 2 KB gzipped. No dependencies, ES2017.
 */
((w, d) => {
  "use strict";
  // Two copies of the snippet on one page must not report the click twice.
  if (w.refapp && w.refapp.consent) return;

  const VID = "refapp_vid";
  const CPN = "refapp_cpn";
  const FORM = "form[data-refapp]";
  const LINK = "a[href^='https://buy.stripe.com/'],a[href^='https://checkout.stripe.com/']";
  const REWARD = "[data-refapp-reward]";
  const ID = /^[\w-]{1,64}$/;

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
    if (ID.test(v)) {
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
    coupon: null,
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

  // The coupon the server offered this visit's referral, or null. Only a code of id
  // characters and a text label are taken; the label is shown as text, never as HTML.
  const ok = (c) => c && typeof c.code == "string" && ID.test(c.code) && typeof c.label == "string";
  const offer = (c) => {
    api.coupon = ok(c) ? { code: c.code, label: c.label } : null;
    if (api.coupon) setCookie(CPN, encodeURIComponent(JSON.stringify(api.coupon)));
    else d.cookie = CPN + "=;path=/;max-age=0";
    scan(d);
  };

  // text/plain keeps the report a "simple" request: no CORS preflight round trip before the
  // visitor navigates away; keepalive lets it finish if they do. Its answer may carry the
  // referral's coupon.
  const send = (body) =>
    fetch(base + "/api/v1/track/click", {
      method: "POST", keepalive: true, credentials: "omit", body,
      headers: { "Content-Type": "text/plain" },
    })
      .then((r) => r.ok && r.json())
      .then((j) => j && offer(j.coupon))
      .catch(() => {});

  // A form's hidden input of this name, created when missing.
  const field = (form, name, value) => {
    let inp = form.querySelector("input[name=" + name + "]");
    if (!inp) {
      inp = d.createElement("input");
      inp.type = "hidden";
      inp.name = name;
      form.appendChild(inp);
    }
    inp.value = value;
  };

  // Fill forms, tag Stripe links and show the reward inside one subtree, the root included.
  const scan = (root) => {
    if (!root.querySelectorAll) return; // text and comment nodes
    const c = api.coupon;
    const els = Array.from(root.querySelectorAll(FORM + "," + LINK + "," + REWARD));
    if (root.matches) els.push(root);
    for (const el of els) {
      if (el.matches(FORM)) {
        field(el, VID, api.visitorId);
        if (c) field(el, "refapp_coupon", c.code);
      } else if (el.matches(LINK)) {
        const u = new URL(el.href);
        // A merchant that sets its own client_reference_id or promo code keeps it.
        if (!u.searchParams.has("client_reference_id")) u.searchParams.set("client_reference_id", api.visitorId);
        if (c && !u.searchParams.has("prefilled_promo_code")) u.searchParams.set("prefilled_promo_code", c.code);
        if (el.href != u.href) el.href = u;
      }
      if (c && el.matches(REWARD)) el.textContent = c.label;
    }
  };

  const start = () => {
    const vid = urlVid || getCookie(VID, 8) || newId();
    api.visitorId = vid;
    // Later pages of the visit still know who referred it, and the coupon that came with it.
    const was = getCookie("refapp_ref", 1);
    api.referral = code || was;
    setCookie(VID, vid); // on every visit, so the expiry slides
    if (!code || code == was) {
      try {
        const m = d.cookie.match(/(?:^|; )refapp_cpn=([^;]+)/);
        api.coupon = m ? JSON.parse(decodeURIComponent(m[1])) : null;
      } catch (e) {}
      if (!ok(api.coupon)) api.coupon = null;
    }

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
      const r = { program: ds.program, ref: code, visitor_id: vid, url: location.href, referrer: d.referrer };
      // refapp_vid next to the same ref means we came through /go/, which has already
      // recorded this click server-side: the report only asks for the coupon.
      if (urlVid && q.get("ref") == code) r.recorded = true;
      send(JSON.stringify(r));
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
