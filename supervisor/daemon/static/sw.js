// The service worker exists for notifications only: a phone's browser (Chrome on Android)
// shows them only through a registration, never with `new Notification()`. No caching, no
// offline copy: the team is live or it is not shown.
"use strict";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (ev) => ev.waitUntil(self.clients.claim()));
self.addEventListener("notificationclick", (ev) => {
  ev.notification.close();
  const url = (ev.notification.data && ev.notification.data.url) || "/";
  ev.waitUntil(self.clients.openWindow(url));
});
