// The page's entry. Chrome fails the requests in flight whenever the host's network interfaces
// change, as Docker's do at each container start (net::ERR_NETWORK_CHANGED); one module lost
// that way fails the whole page, and a failed module stays failed until the page is loaded
// again. So the page loads itself once more, unless this load was already a reload.
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
