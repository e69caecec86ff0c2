/* The case's pathway diagram (bpmn-js NavigatedViewer), current steps highlighted, completed ones marked.
   Markers come from the page (#schema-marqueurs): for each activity, its BPMN id then those of the
   activities containing it; the first one drawn in this diagram gets the marker. A page without
   markers (a pathway version) shows the diagram alone. */
(function () {
  'use strict';
  var container = document.getElementById('schema');
  var status = document.getElementById('schema-etat');
  if (!container) { return; }
  function say(text) { if (status) { status.textContent = text; } }
  if (!window.BpmnJS) { say("Le schéma n'a pas pu être affiché."); return; }
  var markerData = document.getElementById('schema-marqueurs');
  var markers = markerData ? JSON.parse(markerData.textContent) : null;
  var viewer = new window.BpmnJS({ container: container });
  var canvas = viewer.get('canvas');

  document.querySelectorAll('[data-zoom]').forEach(function (button) {
    button.addEventListener('click', function () {
      var kind = button.getAttribute('data-zoom');
      if (kind === 'ajuster') { canvas.zoom('fit-viewport', 'auto'); return; }
      canvas.zoom(canvas.zoom() * (kind === 'plus' ? 1.25 : 0.8));
    });
  });

  fetch(container.getAttribute('data-source'), { credentials: 'same-origin' })
    .then(function (response) {
      if (!response.ok) { throw new Error('HTTP ' + response.status); }
      return response.text();
    })
    .then(function (xml) { return viewer.importXML(xml); })
    .then(function () {
      if (!markers) {
        canvas.zoom('fit-viewport', 'auto');
        label();
        say('Schéma affiché.');
        return;
      }
      var registry = viewer.get('elementRegistry');
      function drawn(chain) {
        for (var i = 0; i < chain.length; i++) { if (registry.get(chain[i])) { return chain[i]; } }
        return null;
      }
      var current = {};
      markers.current.map(drawn).forEach(function (id) { if (id) { current[id] = true; } });
      var done = 0;
      markers.completed.map(drawn).forEach(function (id) {
        if (id && !current[id]) { canvas.addMarker(id, 'marqueur-termine'); done += 1; }
      });
      Object.keys(current).forEach(function (id) { canvas.addMarker(id, 'marqueur-en-cours'); });
      canvas.zoom('fit-viewport', 'auto');
      label();
      say(Object.keys(current).length + ' étape(s) en cours et ' + done + ' terminée(s) marquées sur le schéma.');
    })
    .catch(function () { say("Le schéma n'a pas pu être affiché."); });

  function label() {
    var svg = container.querySelector('svg');
    if (svg) {
      svg.setAttribute('role', 'img');
      svg.setAttribute('aria-label', container.getAttribute('data-libelle'));
    }
    container.setAttribute('data-pret', 'oui');
  }
}());
