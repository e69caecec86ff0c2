/* The pathway modeler: bpmn-js Modeler, our side panel for the SPIE properties, « Vérifier » and « Déployer ».

   The panel edits the selected element (chosen on the diagram, or with the keyboard in the « Élément » list)
   through bpmn-js commands (modeling.updateProperties / updateModdleProperties), so undo and redo work.
   The spie:* attributes are typed by a moddle extension (spie-moddle.json) so that they survive export.
   « Vérifier » and « Déployer » post the exported XML; problems come back as JSON and are marked on the
   diagram (marker and overlay) and listed below it, each item selecting its element. */
(function () {
  'use strict';
  var root = document.getElementById('modeleur');
  if (!root) { return; }
  var container = document.getElementById('modeleur-canvas');
  var status = document.getElementById('modeleur-etat');
  var elementList = document.getElementById('panneau-element');
  var panel = document.getElementById('panneau-champs');
  var summary = document.getElementById('verification-resume');
  var problemList = document.getElementById('problemes');
  var buttons = {
    check: document.getElementById('bouton-verifier'),
    deploy: document.getElementById('bouton-deployer'),
    fit: document.getElementById('bouton-ajuster')
  };
  var choices = JSON.parse(document.getElementById('modeleur-choix').textContent);

  var TYPES = {
    'bpmn:Participant': 'Bassin', 'bpmn:Lane': 'Couloir', 'bpmn:SequenceFlow': 'Flux',
    'bpmn:Task': 'Tâche', 'bpmn:UserTask': 'Tâche utilisateur', 'bpmn:ScriptTask': 'Tâche script',
    'bpmn:ServiceTask': 'Tâche de service', 'bpmn:BusinessRuleTask': 'Tâche de règle métier',
    'bpmn:ManualTask': 'Tâche manuelle', 'bpmn:SendTask': "Tâche d'envoi", 'bpmn:ReceiveTask': 'Tâche de réception',
    'bpmn:CallActivity': 'Appel de parcours', 'bpmn:SubProcess': 'Sous-processus',
    'bpmn:StartEvent': 'Événement de début', 'bpmn:EndEvent': 'Événement de fin',
    'bpmn:BoundaryEvent': 'Événement de bordure', 'bpmn:IntermediateCatchEvent': 'Événement intermédiaire',
    'bpmn:IntermediateThrowEvent': 'Événement intermédiaire', 'bpmn:ExclusiveGateway': 'Branchement exclusif',
    'bpmn:ParallelGateway': 'Branchement parallèle', 'bpmn:InclusiveGateway': 'Branchement inclusif',
    'bpmn:EventBasedGateway': 'Branchement sur événement', 'bpmn:TextAnnotation': 'Annotation',
    'bpmn:Association': 'Association', 'bpmn:DataObjectReference': 'Données',
    'bpmn:DataStoreReference': 'Stockage', 'bpmn:Group': 'Groupe', 'bpmn:MessageFlow': 'Flux de message'
  };
  var TIMER_KINDS = [
    ['timeDuration', 'Durée après l\u2019arrivée sur l\u2019événement', 'Durée ISO 8601 : P15D (15 jours), P1M (1 mois), PT12H (12 heures).'],
    ['timeDate', 'Date', 'Date et heure ISO 8601 : 2026-01-31T09:00:00.'],
    ['timeCycle', 'Cycle (répétition)', 'Répétition ISO 8601 : R3/P1D (3 fois, chaque jour).']
  ];

  function say(text) { status.textContent = text; }

  if (!window.BpmnJS) { say("Le modeleur n'a pas pu être chargé."); return; }

  var modeler, modeling, registry, selection, canvas, overlays, bpmnFactory, eventBus;
  var current = null;       // the element shown in the panel
  var fromPanel = false;    // a command issued by the panel: do not rebuild the panel under the user's cursor
  var busy = false;

  fetch(root.getAttribute('data-extension'), { credentials: 'same-origin' })
    .then(expectOk)
    .then(function (response) { return response.json(); })
    .then(function (spie) {
      var modules = window.spieTraductionBpmn ? [{ translate: ['value', window.spieTraductionBpmn] }] : [];
      modeler = new window.BpmnJS({ container: container, moddleExtensions: { spie: spie }, additionalModules: modules });
      return fetch(root.getAttribute('data-source'), { credentials: 'same-origin' });
    })
    .then(expectOk)
    .then(function (response) { return response.text(); })
    .then(function (xml) { return modeler.importXML(xml); })
    .then(function (result) { ready(result.warnings || []); })
    .catch(function () { say("Le schéma n'a pas pu être chargé dans le modeleur : rechargez la page."); });

  function expectOk(response) {
    if (!response.ok) { throw new Error('HTTP ' + response.status); }
    return response;
  }

  function ready(warnings) {
    modeling = modeler.get('modeling');
    registry = modeler.get('elementRegistry');
    selection = modeler.get('selection');
    canvas = modeler.get('canvas');
    overlays = modeler.get('overlays');
    bpmnFactory = modeler.get('bpmnFactory');
    eventBus = modeler.get('eventBus');
    fit();
    labelCanvas();

    eventBus.on('selection.changed', function (event) {
      var picked = event.newSelection.length === 1 ? event.newSelection[0] : null;
      show(picked);
    });
    eventBus.on('commandStack.changed', function () {
      fillElementList();
      if (current && !registry.get(current.id)) { current = null; }
      if (!fromPanel) { renderPanel(true); }
    });
    elementList.addEventListener('change', function () {
      var element = registry.get(elementList.value);
      if (element) { reveal(element); } else { selection.select(null); show(null); }
    });
    buttons.check.addEventListener('click', function () { send('verifier'); });
    buttons.deploy.addEventListener('click', function () { send('deployer'); });
    buttons.fit.addEventListener('click', fit);
    panel.addEventListener('submit', function (event) { event.preventDefault(); });

    elementList.disabled = false;
    Object.keys(buttons).forEach(function (name) { buttons[name].disabled = false; });
    fillElementList();
    renderPanel(false);
    root.setAttribute('data-pret', 'oui');
    say(warnings.length
      ? 'Schéma chargé, mais ' + warnings.length + ' partie(s) non reconnue(s) par le modeleur seront perdues au déploiement : vérifiez avant de déployer.'
      : 'Schéma chargé. Choisissez un élément sur le schéma ou dans la liste « Élément ».');
  }

  // The whole diagram (never enlarged), to the right of the palette that floats over the canvas's left side.
  function fit() {
    var box = canvas.viewbox();
    var inner = box.inner, outer = box.outer, margin = 16;
    if (!inner.width || !inner.height) { return; }
    var palette = container.querySelector('.djs-palette');
    var left = margin + (palette ? palette.getBoundingClientRect().right - container.getBoundingClientRect().left : 0);
    var scale = Math.min((outer.width - left - margin) / inner.width, (outer.height - 2 * margin) / inner.height, 1);
    canvas.viewbox({ x: inner.x - left / scale, y: inner.y - (outer.height / scale - inner.height) / 2,
                     width: outer.width / scale, height: outer.height / scale });
  }

  function labelCanvas() {
    var svg = container.querySelector('svg');
    if (svg) {
      svg.setAttribute('role', 'application');
      svg.setAttribute('aria-label', container.getAttribute('data-libelle'));
    }
  }

  // --- The element list and the selection -------------------------------------------------------

  function isA(element, type) {
    var bo = element && element.businessObject;
    return !!bo && typeof bo.$instanceOf === 'function' && bo.$instanceOf(type);
  }

  function listed(element) {
    return element.type !== 'label' && !element.labelTarget && element.parent && element.businessObject &&
      element.type !== 'bpmn:Process' && element.type !== 'bpmn:Collaboration';
  }

  function typeLabel(element) { return TYPES[element.type] || element.type.replace('bpmn:', ''); }

  function describe(element) {
    var name = element.businessObject.name;
    return typeLabel(element) + (name ? ' « ' + name + ' »' : ' ' + element.id);
  }

  function fillElementList() {
    var elements = registry.filter(listed).sort(function (a, b) {
      return typeLabel(a).localeCompare(typeLabel(b), 'fr') ||
        (a.businessObject.name || a.id).localeCompare(b.businessObject.name || b.id, 'fr');
    });
    elementList.textContent = '';
    elementList.appendChild(option('', '— Aucun élément choisi —'));
    elements.forEach(function (element) {
      elementList.appendChild(option(element.id, describe(element) + (element.businessObject.name ? ' (' + element.id + ')' : '')));
    });
    elementList.value = current ? current.id : '';
  }

  function reveal(element) {
    selection.select(element);
    canvas.scrollToElement(element);
  }

  function show(element) {
    current = element && listed(element) ? element : null;
    elementList.value = current ? current.id : '';
    renderPanel(false);
  }

  // --- The panel --------------------------------------------------------------------------------

  function renderPanel(keepFocus) {
    var focused = keepFocus && document.activeElement && panel.contains(document.activeElement) ? document.activeElement.id : null;
    panel.textContent = '';
    if (!current) {
      panel.appendChild(paragraph('Aucun élément choisi. Cliquez sur un élément du schéma ou choisissez-le dans la liste.', 'discret'));
      return;
    }
    var heading = document.createElement('h3');
    heading.id = 'panneau-titre';
    heading.tabIndex = -1;
    heading.textContent = describe(current);
    panel.appendChild(heading);
    panel.appendChild(paragraph('Identifiant : ' + current.id, 'discret'));
    panel.appendChild(textField('champ-nom', 'Nom', current.businessObject.name || '', null, function (value) {
      apply(function () { modeling.updateLabel(current, value); }, false);
      heading.textContent = describe(current);
    }));
    if (isA(current, 'bpmn:Lane')) { laneFields(); }
    if (isA(current, 'bpmn:Lane') || isA(current, 'bpmn:Participant')) { addLaneButton(); }
    if (isA(current, 'bpmn:UserTask')) { userTaskFields(); }
    if (isA(current, 'bpmn:UserTask') || isA(current, 'bpmn:EndEvent')) { exitField(); }
    if (timerDefinition(current)) { timerFields(); }
    if (isA(current, 'bpmn:SequenceFlow')) { flowFields(); }
    if (isA(current, 'bpmn:CallActivity')) { callFields(); }
    if (focused && document.getElementById(focused)) { document.getElementById(focused).focus(); }
  }

  function spie(name) { return current.businessObject.get('spie:' + name); }

  function setSpie(name, value, rerender) {
    var properties = {};
    properties['spie:' + name] = value === '' || value === null ? undefined : value;
    apply(function () { modeling.updateProperties(current, properties); }, rerender);
  }

  function apply(command, rerender) {
    fromPanel = true;
    try { command(); } finally { fromPanel = false; }
    if (rerender) { renderPanel(true); }
  }

  function laneFields() {
    var types = (spie('structureType') || '').split('|').map(function (t) { return t.trim(); }).filter(Boolean);
    var group = fieldset('Typologies de structure du couloir',
      "Par ordre de préférence. Sans typologie, le nom du couloir doit en être une (ex. « Mission Locale »).");
    var count = Math.min(types.length + 1, choices.structure_types.length);
    for (var i = 0; i < count; i++) {
      group.appendChild(selectField('champ-typologie-' + (i + 1), i === 0 ? 'Typologie préférée' : 'Typologie de repli ' + i,
        withEmpty(choices.structure_types, i === 0 ? '— Aucune (déduite du nom du couloir) —' : '— Aucune —', types[i]),
        types[i] || '', typeChanged(types, i)));
    }
    panel.appendChild(group);
    panel.appendChild(textField('champ-variable-typologie', 'Variable de typologie',
      spie('structureTypeVariable') || '',
      "Donnée du dossier qui nomme la typologie à l'exécution (ex. receiving_structure_type) ; laissez vide sinon.",
      function (value) { setSpie('structureTypeVariable', value.trim(), false); }));
  }

  function typeChanged(types, index) {
    return function (value) {
      var next = types.slice();
      next[index] = value;
      setSpie('structureType', next.filter(Boolean).join('|'), true);
    };
  }

  function addLaneButton() {
    var button = document.createElement('button');
    button.type = 'button';
    button.className = 'bouton bouton-petit bouton-secondaire';
    button.textContent = 'Ajouter un couloir en dessous';
    button.addEventListener('click', function () {
      var lane = modeling.addLane(current, 'bottom');
      reveal(lane);
      document.getElementById('panneau-titre').focus();
    });
    panel.appendChild(wrap(button));
  }

  function userTaskFields() {
    panel.appendChild(selectField('champ-formulaire', 'Formulaire',
      withEmpty(choices.forms.map(function (f) { return [f[0], f[1] + ' (' + f[0] + ')']; }), '— Aucun —', spie('formKey')),
      spie('formKey') || '', function (value) { setSpie('formKey', value, false); }));
    panel.appendChild(textField('champ-echeance', 'Échéance de la tâche', spie('dueIn') || '',
      'Durée ISO 8601 après l\u2019ouverture (P15D : 15 jours, P1M : 1 mois). Vide : la première minuterie de bordure.',
      function (value) { setSpie('dueIn', value.trim(), false); }));
    panel.appendChild(selectField('champ-destinataires', 'Destinataires',
      withEmpty(choices.audiences.filter(function (a) { return a[0] !== 'referent'; }), 'Référents (par défaut)', spie('audience')),
      spie('audience') || '', function (value) { setSpie('audience', value, false); }));
    panel.appendChild(selectField('champ-action', 'Effet sur le groupe de suivi',
      withEmpty(choices.actions, '— Aucun —', spie('action')),
      spie('action') || '', function (value) { setSpie('action', value, false); }));
  }

  function exitField() {
    panel.appendChild(checkboxField('champ-sortie', 'Termine l\u2019accompagnement de la structure (sortie)',
      (spie('exit') || '').toLowerCase() === 'true',
      'Le moteur exige alors un passage de relais ou une sortie positive.',
      function (checked) { setSpie('exit', checked ? 'true' : '', false); }));
  }

  function flowFields() {
    panel.appendChild(checkboxField('champ-sortie-positive', 'Branche de sortie positive',
      (spie('positiveExit') || '').toLowerCase() === 'true',
      'Emploi durable, formation qualifiante… : pas de passage de relais exigé sur cette branche.',
      function (checked) { setSpie('positiveExit', checked ? 'true' : '', false); }));
  }

  function callFields() {
    var receiving = spie('receivingStructureType') || '';
    panel.appendChild(selectField('champ-structure-accueil', 'Structure d\u2019accueil du passage de relais',
      withEmpty(choices.structure_types, '— Aucune —', receiving), receiving,
      function (value) { setSpie('receivingStructureType', value, false); }));
  }

  // --- Timers -------------------------------------------------------------------------------------

  function timerDefinition(element) {
    var definitions = element.businessObject.eventDefinitions || [];
    for (var i = 0; i < definitions.length; i++) {
      if (definitions[i].$instanceOf('bpmn:TimerEventDefinition')) { return definitions[i]; }
    }
    return null;
  }

  function readTimer(definition) {
    for (var i = 0; i < TIMER_KINDS.length; i++) {
      var expression = definition.get(TIMER_KINDS[i][0]);
      if (expression) {
        var body = (expression.body || '').trim();
        var literal = /^"([^"\\]*)"$/.exec(body) || /^'([^'\\]*)'$/.exec(body);
        return { kind: TIMER_KINDS[i][0], value: literal ? literal[1] : body, computed: !literal && body !== '' };
      }
    }
    return { kind: 'timeDuration', value: '', computed: false };
  }

  function writeTimer(timer, rerender) {
    var definition = timerDefinition(current);
    var body = timer.computed ? timer.value.trim() : '"' + timer.value.trim().replace(/["\\]/g, '') + '"';
    var properties = { timeDuration: undefined, timeDate: undefined, timeCycle: undefined };
    properties[timer.kind] = bpmnFactory.create('bpmn:FormalExpression', { body: body });
    apply(function () { modeling.updateModdleProperties(current, definition, properties); }, rerender);
  }

  function timerFields() {
    var timer = readTimer(timerDefinition(current));
    var help = TIMER_KINDS.filter(function (k) { return k[0] === timer.kind; })[0][2];
    var group = fieldset('Minuterie', null);
    group.appendChild(selectField('champ-minuterie-type', 'Type de minuterie',
      TIMER_KINDS.map(function (k) { return [k[0], k[1]]; }), timer.kind,
      function (value) { timer.kind = value; writeTimer(timer, true); }));
    group.appendChild(checkboxField('champ-minuterie-calculee', 'Valeur calculée par une expression (variable du dossier)',
      timer.computed, null, function (checked) { timer.computed = checked; writeTimer(timer, true); }));
    group.appendChild(textField('champ-minuterie-valeur', timer.computed ? 'Expression' : 'Valeur', timer.value,
      timer.computed ? 'Expression Python évaluée à l\u2019exécution, qui donne une valeur ISO 8601 (ex. date_butee_26_ans).' : help,
      function (value) { timer.value = value; writeTimer(timer, false); }));
    panel.appendChild(group);
  }

  // --- Form controls ------------------------------------------------------------------------------

  function option(value, text) {
    var element = document.createElement('option');
    element.value = value;
    element.textContent = text;
    return element;
  }

  function withEmpty(pairs, emptyLabel, currentValue) {
    var list = [['', emptyLabel]].concat(pairs);
    if (currentValue && !pairs.some(function (p) { return p[0] === currentValue; })) {
      list.push([currentValue, currentValue + ' (valeur inconnue)']);
    }
    return list;
  }

  function paragraph(text, className) {
    var p = document.createElement('p');
    p.textContent = text;
    if (className) { p.className = className; }
    return p;
  }

  function wrap(control) {
    var div = document.createElement('div');
    div.className = 'champ';
    div.appendChild(control);
    return div;
  }

  function labelled(id, label, help, control) {
    var div = document.createElement('div');
    div.className = 'champ';
    var element = document.createElement('label');
    element.htmlFor = id;
    element.textContent = label;
    div.appendChild(element);
    if (help) {
      var aide = paragraph(help, 'aide');
      aide.id = id + '-aide';
      control.setAttribute('aria-describedby', aide.id);
      div.appendChild(aide);
    }
    control.id = id;
    div.appendChild(control);
    return div;
  }

  function textField(id, label, value, help, onChange) {
    var input = document.createElement('input');
    input.type = 'text';
    input.value = value;
    input.autocomplete = 'off';
    input.addEventListener('change', function () { onChange(input.value); });
    return labelled(id, label, help, input);
  }

  function selectField(id, label, pairs, value, onChange) {
    var select = document.createElement('select');
    pairs.forEach(function (pair) { select.appendChild(option(pair[0], pair[1])); });
    select.value = value;
    select.addEventListener('change', function () { onChange(select.value); });
    return labelled(id, label, null, select);
  }

  function checkboxField(id, label, checked, help, onChange) {
    var div = document.createElement('div');
    div.className = 'champ option';
    var input = document.createElement('input');
    input.type = 'checkbox';
    input.id = id;
    input.checked = checked;
    input.addEventListener('change', function () { onChange(input.checked); });
    var element = document.createElement('label');
    element.htmlFor = id;
    element.textContent = label;
    div.appendChild(input);
    div.appendChild(element);
    if (help) {
      var aide = paragraph(help, 'aide');
      aide.id = id + '-aide';
      input.setAttribute('aria-describedby', aide.id);
      var outer = document.createElement('div');
      outer.appendChild(div);
      outer.appendChild(aide);
      return outer;
    }
    return div;
  }

  function fieldset(legend, help) {
    var group = document.createElement('fieldset');
    group.className = 'groupe';
    var element = document.createElement('legend');
    element.textContent = legend;
    group.appendChild(element);
    if (help) { group.appendChild(paragraph(help, 'aide')); }
    return group;
  }

  // --- Vérifier, Déployer -------------------------------------------------------------------------

  function send(action) {
    if (busy) { return; }
    busy = true;
    buttons.check.disabled = buttons.deploy.disabled = true;
    say(action === 'verifier' ? 'Vérification en cours…' : 'Déploiement en cours…');
    modeler.saveXML({ format: true })
      .then(function (result) {
        return fetch(root.getAttribute('data-' + action), {
          method: 'POST', credentials: 'same-origin', body: result.xml,
          headers: { 'Content-Type': 'application/xml; charset=utf-8', 'X-CSRF-Token': root.getAttribute('data-csrf'),
                     'Accept': 'application/json' }
        });
      })
      .then(function (response) {
        var json = (response.headers.get('Content-Type') || '').indexOf('application/json') === 0;
        return (json ? response.json() : Promise.resolve(null)).then(function (data) {
          return { status: response.status, data: data };
        });
      })
      .then(function (answer) { received(action, answer.status, answer.data); })
      .catch(function () { say('Le serveur n\u2019a pas répondu : vérifiez la connexion et recommencez.'); })
      .then(function () {
        busy = false;
        buttons.check.disabled = buttons.deploy.disabled = false;
      });
  }

  function received(action, code, data) {
    if (!data) {
      say(code === 400 ? 'La page a expiré : rechargez-la (vos modifications non déployées seront perdues).'
        : code === 403 ? 'Vous n\u2019avez pas le droit de modifier les parcours.'
          : code === 413 ? 'Le schéma est trop volumineux.' : 'Erreur inattendue du serveur (' + code + ').');
      return;
    }
    if (action === 'deployer' && code === 201 && data.redirect) {
      say('Version ' + data.version + ' déployée.');
      window.location.assign(data.redirect);
      return;
    }
    if (data.problems) { showProblems(data.problems, data.message); }
    say(data.message);
  }

  function clearProblems() {
    overlays.remove({ type: 'spie-probleme' });
    registry.getAll().forEach(function (element) {
      canvas.removeMarker(element, 'marqueur-erreur');
      canvas.removeMarker(element, 'marqueur-avertissement');
    });
    problemList.textContent = '';
  }

  function showProblems(problems, message) {
    clearProblems();
    summary.textContent = message;
    var byElement = {};
    problems.forEach(function (problem) {
      var element = problem.element_id ? registry.get(problem.element_id) : null;
      var item = document.createElement('li');
      item.className = 'probleme probleme-' + problem.severity;
      var text = problem.severity_label + ' : ' + problem.title +
        (element ? ' — ' + describe(element) : problem.element_id ? ' — ' + problem.element_id : '') +
        (problem.line ? ' (ligne ' + problem.line + ')' : '');
      if (element) {
        var button = document.createElement('button');
        button.type = 'button';
        button.className = 'lien-bouton';
        button.setAttribute('data-element', element.id);
        button.textContent = text;
        button.addEventListener('click', function () {
          reveal(element);
          document.getElementById('panneau-titre').focus();
        });
        item.appendChild(button);
        (byElement[element.id] = byElement[element.id] || []).push(problem);
      } else {
        item.appendChild(paragraph(text));
      }
      var detail = paragraph(problem.detail, 'discret');
      if (problem.detail_lang !== 'fr') { detail.lang = problem.detail_lang; }
      item.appendChild(detail);
      problemList.appendChild(item);
    });
    Object.keys(byElement).forEach(function (id) {
      var list = byElement[id];
      var worst = list.some(function (p) { return p.severity !== 'warning'; }) ? 'erreur' : 'avertissement';
      canvas.addMarker(id, 'marqueur-' + worst);
      var bubble = document.createElement('div');
      bubble.className = 'bulle-probleme bulle-' + worst;
      bubble.textContent = list.map(function (p) { return p.title; }).join(' ; ');
      overlays.add(id, 'spie-probleme', { position: { top: -12, left: 8 }, html: bubble });
    });
  }
}());
