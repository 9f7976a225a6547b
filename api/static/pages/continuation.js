/* The continuation page's only script: tells the "call me then" form the browser's time zone, so the
 * day and time the customer picks are read on their own clock (without it, the number's zone is used). */
"use strict";

(function () {
  let zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (_) { /* a browser without Intl: the server uses the number's zone */ }
  for (const field of document.querySelectorAll('input[name="tz"]')) field.value = zone;
})();
