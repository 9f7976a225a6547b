/* Shared by Centralita's pages: API calls with the session cookie, number formats, safe DOM building. */
"use strict";

(function () {
  const SIGN_IN = "/sign-in?next=";

  function signIn() {
    window.location.assign(SIGN_IN + encodeURIComponent(window.location.pathname));
  }

  /** GETs a JSON document from the API; a missing or expired session goes back to the sign-in form. */
  async function api(path) {
    const answer = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (answer.status === 401) {
      signIn();
      throw new Error("signed out");
    }
    if (!answer.ok) {
      let detail = answer.statusText;
      try {
        const body = await answer.json();
        detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
      } catch (_) { /* not JSON: keep the status text */ }
      const error = new Error(detail);
      error.status = answer.status;
      throw error;
    }
    return answer.json();
  }

  /** Builds an element: attributes (class, data-*, …) and children (strings become text, never HTML). */
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  const time = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const dateTime = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });

  const format = {
    count(value) { return value === null || value === undefined ? "–" : number.format(value); },
    /** A fraction (0.823) as a percentage ("82.3%"). */
    percent(value) { return value === null || value === undefined ? "–" : number.format(value * 100) + "%"; },
    /** Seconds as "42 s", "3:05" or "1:02:03". */
    duration(seconds) {
      if (seconds === null || seconds === undefined) return "–";
      const whole = Math.max(0, Math.round(seconds));
      if (whole < 60) return whole + " s";
      const h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), s = whole % 60;
      const two = (n) => String(n).padStart(2, "0");
      return h ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
    },
    time(iso) { return iso ? time.format(new Date(iso)) : "–"; },
    dateTime(iso) { return iso ? dateTime.format(new Date(iso)) : "–"; },
  };

  /** The header's customer finder: an id goes straight to the page; a phone, email or name is looked up. */
  function customerFinder() {
    const form = document.getElementById("find-customer");
    if (!form) return;
    form.hidden = false;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = form.elements.q;
      const q = input.value.trim();
      if (!q) return;
      input.setCustomValidity("");
      try {
        let id = null;
        if (/^\d{1,6}$/.test(q)) {
          id = Number(q);
        } else if (q.includes("@")) {
          id = (await api("/api/v1/customers/lookup?email=" + encodeURIComponent(q))).customer.id;
        } else if (/^[+\d][\d\s().-]{5,}$/.test(q)) {
          id = (await api("/api/v1/customers/lookup?phone=" + encodeURIComponent(q))).customer.id;
        } else {
          const found = await api("/api/v1/customers?name=" + encodeURIComponent(q));
          if (found.items.length) id = found.items[0].id;
        }
        if (id === null) throw new Error("nobody found");
        window.location.assign("/customers/" + id);
      } catch (error) {
        input.setCustomValidity(error.status === 404 ? "nobody found" : error.message);
        input.reportValidity();
      }
    });
    form.elements.q.addEventListener("input", () => form.elements.q.setCustomValidity(""));
  }

  window.centralita = { api, el, format, signIn };
  document.addEventListener("DOMContentLoaded", customerFinder);
})();
