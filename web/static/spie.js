/* Progressive enhancement helpers. Without JavaScript every form posts and the server redirects. */
(function () {
  'use strict';
  // An htmx request that fails (expired form, task taken meanwhile, server down): send the same form
  // the ordinary way, so the server's page explains what happened.
  document.addEventListener('htmx:responseError', fallBack);
  document.addEventListener('htmx:sendError', fallBack);
  function fallBack(event) {
    var form = event.detail && event.detail.elt && event.detail.elt.closest('form');
    if (!form || form.getAttribute('data-repli') === 'oui') { return; }
    form.setAttribute('data-repli', 'oui');
    HTMLFormElement.prototype.submit.call(form);
  }
}());
