/* French for the bpmn-js modeler's palette, context pad and replace menu (bpmn-js's `translate` service).
   Strings not listed here stay in English. */
(function () {
  'use strict';
  var fr = {
    'Activate hand tool': 'Outil main (déplacer le schéma)',
    'Activate lasso tool': 'Outil lasso (sélection multiple)',
    'Activate create/remove space tool': "Créer ou retirer de l'espace",
    'Activate global connect tool': 'Relier deux éléments',
    'Create start event': 'Créer un événement de début',
    'Create intermediate/boundary event': 'Créer un événement intermédiaire ou de bordure',
    'Create end event': 'Créer un événement de fin',
    'Create gateway': 'Créer un branchement',
    'Create task': 'Créer une tâche',
    'Create expanded sub-process': 'Créer un sous-processus',
    'Create pool/participant': 'Créer un bassin (participant)',
    'Create data object reference': 'Créer une référence de données',
    'Create data store reference': 'Créer une référence de stockage',
    'Create group': 'Créer un groupe',
    'Append end event': 'Ajouter un événement de fin',
    'Append gateway': 'Ajouter un branchement',
    'Append task': 'Ajouter une tâche',
    'Append intermediate/boundary event': 'Ajouter un événement intermédiaire ou de bordure',
    'Append timer intermediate catch event': 'Ajouter une minuterie',
    'Append message intermediate catch event': "Ajouter l'attente d'un message",
    'Append receive task': 'Ajouter une tâche de réception',
    'Append compensation activity': 'Ajouter une activité de compensation',
    'Add lane above': 'Ajouter un couloir au-dessus',
    'Add lane below': 'Ajouter un couloir en dessous',
    'Divide into two lanes': 'Diviser en deux couloirs',
    'Divide into three lanes': 'Diviser en trois couloirs',
    'Add text annotation': 'Ajouter une annotation',
    'Change element': "Changer le type de l'élément",
    'Connect to other element': 'Relier à un autre élément',
    'Connect using association': 'Relier par une association',
    'Delete': 'Supprimer',
    'Search in diagram': 'Rechercher dans le schéma',
    'Toggle non-interrupting': 'Interrompante ou non',
    'Task': 'Tâche',
    'User task': 'Tâche utilisateur',
    'Script task': 'Tâche script',
    'Service task': 'Tâche de service',
    'Business rule task': 'Tâche de règle métier',
    'Manual task': 'Tâche manuelle',
    'Send task': "Tâche d'envoi",
    'Receive task': 'Tâche de réception',
    'Call activity': 'Appel de parcours',
    'Sub-process (collapsed)': 'Sous-processus (replié)',
    'Sub-process (expanded)': 'Sous-processus (déplié)',
    'Start event': 'Événement de début',
    'End event': 'Événement de fin',
    'Terminate end event': 'Fin terminant le processus',
    'Message end event': 'Fin avec message',
    'Intermediate throw event': 'Événement intermédiaire',
    'Timer start event': 'Début par minuterie',
    'Timer intermediate catch event': 'Minuterie intermédiaire',
    'Timer boundary event': 'Minuterie de bordure (interrompante)',
    'Timer boundary event (non-interrupting)': 'Minuterie de bordure (non interrompante)',
    'Message start event': 'Début par message',
    'Message intermediate catch event': "Attente d'un message",
    'Message boundary event': 'Message de bordure (interrompant)',
    'Message boundary event (non-interrupting)': 'Message de bordure (non interrompant)',
    'Exclusive gateway': 'Branchement exclusif',
    'Parallel gateway': 'Branchement parallèle',
    'Inclusive gateway': 'Branchement inclusif',
    'Event-based gateway': 'Branchement sur événement',
    'Sequence flow': 'Flux',
    'Default flow': 'Flux par défaut',
    'Conditional flow': 'Flux conditionnel'
  };
  window.spieTraductionBpmn = function (template, replacements) {
    var text = Object.prototype.hasOwnProperty.call(fr, template) ? fr[template] : template;
    replacements = replacements || {};
    return text.replace(/{([^}]+)}/g, function (_, key) {
      return Object.prototype.hasOwnProperty.call(replacements, key) ? replacements[key] : '{' + key + '}';
    });
  };
}());
