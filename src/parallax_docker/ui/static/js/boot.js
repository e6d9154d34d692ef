// The page's entry. It asks for the fleet's lists at once, while the other modules load: on a
// fleet of hundreds they are the first view's longest wait, and api.js takes these answers
// for the first read of each. Dependency-free on purpose, so that it runs whatever else fails.
//
// Chrome fails the requests in flight whenever the host's network interfaces change, as
// Docker's do at each container start (net::ERR_NETWORK_CHANGED); one module lost that way
// fails the whole page, and a failed module stays failed until the page is loaded again. So
// the page loads itself once more, unless this load was already a reload.
// The list of each kind the fleet shows (SOURCES in sources.js).
const EARLY_READS = ["/agents", "/threads"];
// The key api.js keeps the tab's API token under.
const TOKEN_KEY = "parallax-docker.token";

function earlyRead(path, token) {
  const headers = { accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  // The same request api.js makes; a failure leaves the read to api.js (null: not taken).
  return fetch(path, { headers, credentials: "omit", cache: "no-store", redirect: "error" }).catch(() => null);
}

const token = sessionStorage.getItem(TOKEN_KEY);
globalThis.parallaxEarlyReads = new Map(EARLY_READS.map((path) => [path, { token, response: earlyRead(path, token) }]));

import("./main.js").catch((error) => {
  const [navigation] = performance.getEntriesByType("navigation");
  if (!navigation || navigation.type !== "reload") {
    location.reload();
    return;
  }
  const main = document.getElementById("main");
  main.replaceChildren();
  main.append(`The dashboard's code could not be loaded (${error.message}). Load the page again.`);
  main.dataset.failed = "true";
});
