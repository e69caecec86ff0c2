/* « Indicateurs »: a horizontal bar chart per canvas[data-graphique] (Chart.js from node_modules).
   The figures come from the data-graphique attribute; the table under each chart is their text alternative. */
(function () {
  'use strict';
  if (!window.Chart) { return; }
  var COLOURS = {ouvertes: '#1f4e79', retard: '#b00020'};  /* --primaire and --erreur of spie.css */
  var BAR_HEIGHT = 34;

  document.querySelectorAll('canvas[data-graphique]').forEach(function (canvas) {
    var figures = JSON.parse(canvas.getAttribute('data-graphique'));
    canvas.parentNode.style.height = (70 + BAR_HEIGHT * figures.libelles.length) + 'px';
    new window.Chart(canvas, {
      type: 'bar',
      data: {
        labels: figures.libelles,
        datasets: [
          {label: 'Tâches ouvertes', data: figures.ouvertes, backgroundColor: COLOURS.ouvertes},
          {label: 'dont en retard', data: figures.retard, backgroundColor: COLOURS.retard}
        ]
      },
      options: {
        indexAxis: 'y',
        locale: 'fr-FR',
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {x: {beginAtZero: true, ticks: {precision: 0}}},
        plugins: {legend: {position: 'top'}}
      }
    });
    canvas.setAttribute('data-trace', 'oui');
  });
}());
