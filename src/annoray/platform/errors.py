"""Every error a user can see, coded so it can be found, documented and asserted.

Codes: E1xx labeling config, E2xx import and completions, E3xx datasets and selection,
E4xx access, E5xx state conflicts, E6xx training, E7xx licenses, E8xx servers, pre-annotation and rules,
E9xx documents and OCR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Errors:
    E101 = "[E101] the labeling config is not well-formed XML: {msg}"
    E102 = "[E102] the labeling config is {size} bytes; the limit is {limit} bytes"
    E103 = "[E103] DOCTYPE and entity declarations are not allowed in a labeling config"
    E104 = "[E104] the root tag must be <View>, not <{tag}>"
    E105 = "[E105] unknown tag <{tag}>; use one of: {known}"
    E106 = "[E106] <{tag}> needs a '{attr}' attribute"
    E107 = "[E107] name '{name}' is already used on line {first_line}; names must be unique"
    E108 = "[E108] toName '{to_name}' points at no object tag; object names here: {names}"
    E109 = "[E109] <{tag}> must contain at least one <{child}>"
    E110 = "[E110] value '{value}' appears twice in <{tag} name=\"{name}\">"
    E111 = "[E111] attribute {attr}=\"{value}\" must be one of: {allowed}"
    E112 = "[E112] assertion label '{label}' is bound to model '{model}', which is a NER model; assertion labels need an assertion model"
    E113 = "[E113] a project may use one assertion model; this config names {count}: {models}"
    E114 = "[E114] the config references {count} distinct models ({models}); a pre-annotation server holds at most {limit}"
    E115 = "[E115] model '{model}' is not in the model catalog"
    E116 = "[E116] label '{label}' is bound to model '{model}' of kind '{kind}'; it needs a {expected} model"
    E117 = "[E117] only one <Choices> may have train=\"true\"; found it on: {names}"
    E118 = "[E118] <{tag}> must be inside <{parent}>"
    E119 = "[E119] assertion labels need a <Labels> on a Text object, not on <{tag}>"
    E120 = "[E120] the config has no labeling tag; add <Labels> or <Choices> pointing at an object tag"
    E121 = "[E121] the labeling config has {count} error(s)"
    E122 = "[E122] language '{language}' is not supported; use one of: {languages}"
    E123 = "[E123] model_type '{model_type}' is not one of: {model_types}"

    E124 = ("[E124] <Relations> needs entities to join: add NER labels (<Labels> with <Label> values) on the same text "
            "object")
    E125 = "[E125] the config has {count} <Relations> tags; keep one (its <Relation> values are the relation labels)"
    E201 = "[E201] item {index}: {msg}"
    E202 = "[E202] result item {index}: from_name '{from_name}' is not a control tag of the labeling config"
    E203 = "[E203] result item {index}: label '{label}' is not defined in <{tag} name=\"{name}\">"
    E204 = "[E204] result item {index}: span {start}-{end} is outside the text ({length} characters)"
    E205 = "[E205] result item {index}: span text '{given}' does not match the task text '{actual}' at {start}-{end}"
    E206 = "[E206] task data has no '{key}' field, which the labeling config reads as ${key}"
    E207 = "[E207] the import is empty; send a JSON list of tasks"
    E208 = "[E208] result must be a list of regions"
    E209 = "[E209] result item {index}: needs 'from_name' and a 'value' object"
    E210 = "[E210] result item {index}: labels must be a list"
    E211 = "[E211] result item {index}: start and end must be integers into the text"
    E212 = "[E212] 'data' must be an object"
    E213 = "[E213] meta.tags must be a list of strings of 1 to 100 characters"
    E214 = "[E214] {kind} must be a list"
    E215 = "[E215] {kind}[{index}] must be an object with 'result'"
    E216 = "[E216] status must be 'draft' or 'submitted'"
    E217 = "[E217] {invalid} of {count} tasks are invalid; nothing was imported"
    E218 = ("[E218] result item {index}: a rectangle needs numbers x, y, width and height in percent of the page "
            "(0 to 100, inside it){why}")
    E219 = "[E219] image '{url}' is not a page of this project's documents; upload the document to the project first"
    E220 = ("[E220] '{key}' is {length} characters; a task's text may have at most {limit} (spaCy's own max_length): "
            "split the document into several tasks")

    E221 = ("[E221] result[{index}]: a relation joins regions by their 'id': '{region}' is not the id of a region of this "
            "result")
    E222 = "[E222] result[{index}]: relation label '{label}' is not one of the config's <Relation> values: {allowed}"
    E301 = "[E301] label '{label}' has no training example"
    E302 = "[E302] label '{label}' has only {count} training examples; at least {minimum} are recommended"
    E303 = "[E303] the project's labeling config has no {kind} labels to train"
    E304 = "[E304] no completion is eligible for training (tags {tags}, reviewed only: {reviewed_only})"
    E305 = "[E305] task {task_id}: span {start}-{end} '{text}' does not align with token boundaries (nearest tokens: '{expanded}'); the span is left out"
    E318 = ("[E318] task {task_id}: relation {label} joins region '{from_id}' and '{to_id}', which are not both entities of "
            "the selected completion; it is left out")
    E319 = ("[E319] task {task_id}: relation {label} joins region '{from_id}' and '{to_id}', which are in different "
            "sentences; relations are learnt within a sentence, so it is left out")
    E306 = "[E306] task {task_id}: span {start}-{end} '{text}' ({label}) overlaps another entity; the span is left out"
    E307 = "[E307] task {task_id}: assertion label '{label}' at {start}-{end} has no NER chunk on the same span; it is left out"
    E308 = "[E308] task {task_id}: single-choice group '{name}' has {count} choices selected; the example is left out"
    E309 = "[E309] split by tags found no task tagged 'test' among the {count} selected tasks; tag some tasks 'test' or use a random split"
    E310 = "[E310] split by tags found no task tagged 'train' among the {count} selected tasks"
    E311 = "[E311] {count} selected tasks carry neither a 'train' nor a 'test' tag and are left out"
    E312 = "[E312] export format '{format}' is not one of: {formats}"
    E313 = "[E313] task {task_id}: region {region} ({label}) covers no OCR word (a word must be at least half inside it); it is left out"
    E314 = "[E314] task {task_id}: region {region} ({label}) covers OCR words another region already labels; it is left out"
    E315 = "[E315] task {task_id}: the image '{url}' is not a page of this project's documents; the task is left out"
    E316 = "[E316] {count} task(s) wait for their page's OCR (for example task {task_id}); they are left out until it is done"
    E317 = "[E317] task {task_id}: its page's OCR failed ({why}); the task is left out"

    E401 = "[E401] missing or invalid bearer token; send 'Authorization: Bearer <token>'"
    E402 = "[E402] role '{role}' may not {action}; allowed: {allowed}"
    E403 = "[E403] only an admin may {action}"
    E404 = "[E404] {what} {id} not found"
    E405 = "[E405] you are not a member of project {project_id}"
    E406 = "[E406] no user named '{username}'; an admin creates it first"
    E407 = "[E407] that token is not one annoray knows: check it and sign in again"
    E408 = "[E408] this form is stale or did not come from annoray's own page: reload the page and try again"
    E409 = "[E409] this sign-in link was used already or is over an hour old: sign in with your API token, or run `annoray up` again for a new link"
    E410 = "[E410] this token was {what}: ask for a new one (POST /api/tokens)"
    E411 = "[E411] this token's scope is 'read': it may only read (GET); use a token of scope 'write' to change anything"
    E412 = "[E412] a token of scope '{scope}' cannot be made {why}"
    E413 = "[E413] '{username}' is a service account: it signs in nowhere, its pipelines send its API tokens"
    E414 = "[E414] token {token_id} is not yours; only an admin may see or revoke another user's tokens"
    E418 = ("[E418] you have {count} live streams open (training logs, progress pages), the most one user may at once "
            "(ANNORAY_API__MAX_STREAMS_PER_USER): close one first")
    E415 = "[E415] user '{username}' is disabled: an admin enables it again (PATCH /api/users/{username})"
    E416 = "[E416] an admin cannot disable their own account: another admin does"
    E417 = ("[E417] a user's own token is replaced with that token itself (or from the dashboard), never with a named "
            "token: a named token may not widen itself into the user's own")

    E501 = "[E501] user '{username}' already exists"
    E502 = "[E502] a draft cannot be reviewed; submit it first"
    E503 = "[E503] only the author may edit completion {completion_id}"
    E504 = "[E504] completion {completion_id} has been reviewed and can no longer be edited"
    E505 = "[E505] the request body is {size} bytes; the limit is {limit} bytes"
    E506 = "[E506] prediction {prediction_id} does not belong to task {task_id}"
    E507 = "[E507] training {job_id} has already ended ({status}); there is nothing to cancel"

    E508 = "[E508] a model named '{name}' is already in the catalog; choose another name"
    E509 = "[E509] '{username}' is the project's only owner; add another owner first"
    E510 = "[E510] cannot import the model at {uri}: {why}"
    E511 = "[E511] models of engine '{engine}' cannot be imported here; importable: {importable}"
    E512 = "[E512] the request is not valid UTF-8 text (at byte {at}): send text encoded as UTF-8"
    E513 = ("[E513] {where} contains {what}, which annoray does not store: remove it (text may not hold NUL characters "
            "or unpaired UTF-16 surrogates)")
    E515 = ("[E515] the request conflicts with a change made at the same moment (a name or an item taken meanwhile): "
            "read the current state and send it again")
    E514 = "[E514] the JSON body is nested deeper than {limit} levels: flatten it"
    E516 = ("[E516] work {work_id} ({kind}) never ended: the API process that ran it stopped; nothing of it was kept, "
            "send the request again")
    E517 = "[E517] work {work_id} ({kind}) failed unexpectedly (the API's log has why); send the request again"
    E518 = "[E518] a team named '{name}' already exists; choose another name or PATCH /api/teams/{name}"
    E519 = ("[E519] 'default' is the team of every project in no team (it has no quota and only borrows): name a team "
            "otherwise")
    E520 = ("[E520] priority {priority} is above {limit}, the highest an owner or manager may ask (setting "
            "scheduler.max_priority); ask for {limit} or less, or an admin sends it")

    E601 = "[E601] engine '{engine}' has no {kind} trainer; available for {kind}: {available}"
    E602 = "[E602] engine '{engine}' is not available here: {why}"
    E603 = "[E603] language '{language}' is not supported by engine '{engine}'; supported: {supported}"
    E604 = "[E604] embeddings '{name}' are not in the model catalog as embeddings; registered: {available}"
    E605 = "[E605] embeddings file {path} of '{name}' is missing"
    E606 = "[E606] the training data changed since the request and can no longer train: {why}"
    E607 = "[E607] the training worker was killed {count} times, more than the retry budget of {budget}; last: {why}"
    E608 = "[E608] the training worker ran out of memory ({why}); give the {kind} trainer more memory (ANNORAY_TRAINING__RESOURCES) or lower batch_size"
    E609 = "[E609] training crashed: {why}"
    E610 = "[E610] the scheduler is not running; start the platform with `annoray up`"
    E611 = "[E611] cancelled by {username}"
    E612 = "[E612] this training can never run on this cluster: {why}"
    E613 = "[E613] the node {node} running this training left the cluster; {what}"
    E614 = "[E614] deploy metric '{metric}' is not one of: {allowed}"
    E615 = "[E615] the model was not deployed: the rewritten labeling config breaks a rule: {why}"
    E616 = "[E616] active learning could not start a training: {why}"
    E617 = "[E617] the training run {why}; {what}"
    E618 = ("[E618] the model was not deployed: it was scored on {count} held-out examples, fewer than the {minimum} that "
            "judge it (ANNORAY_DEPLOY__MIN_HELD_OUT); add annotated tasks, or deploy it anyway with deploy \"force\"")
    E619 = ("[E619] the model was not deployed: its {metric} {score} is below the floor of {floor} (ANNORAY_DEPLOY__FLOOR); "
            "deploy it anyway with deploy \"force\"")
    E620 = "[E620] the training config is refused: {where}: {why}"
    E621 = ("[E621] code comes with a training config only when the operator sets ANNORAY_TRAINING__ALLOW_CUSTOM_CODE, "
            "and only from an admin; send the config alone")
    E622 = "[E622] training config {config_id} is not one of this project's; its configs: {available}"
    E623 = "[E623] a training config trains NER with engine 'spacy'; this request {why}"
    E624 = "[E624] the project already has a training config named '{name}'; delete it or choose another name"
    E625 = "[E625] {path} is not a saved Spark NLP WordEmbeddingsModel folder (its metadata declares no dimension)"
    E626 = "[E626] engine '{engine}' trains over word embeddings: register a saved WordEmbeddingsModel folder (kind sparknlp_embeddings) and name it in \"embeddings\""
    E627 = "[E627] the scheduler could not do this: {why}; try again (what it had changed is in the database)"
    E628 = ("[E628] the model could not be written to the model store at {uri}: {why}; nothing was entered in the "
            "catalog: make the store writable (ANNORAY_MODEL_STORE) and train again")

    E629 = ("[E629] the training config is refused: {where}: {what}, and an uploaded config may load nothing from the "
            "server's disk; describe the component in the config itself")
    E630 = "[E630] the training config is refused: {where} is larger than an uploaded config may ask for ({limit})"
    E701 = "[E701] the license document is malformed: {why}"
    E702 = "[E702] issuer '{issuer}' is not trusted here; trusted issuers (settings licenses.issuers): {trusted}"
    E703 = "[E703] the signature does not match issuer '{issuer}''s key: the license was altered or not signed by that issuer"
    E704 = "[E704] the license expired on {when}"
    E705 = "[E705] license '{key}' is already installed (license {license_id}); delete it first to replace it"
    E706 = "[E706] license {license_id} has {count} leased seats (held by {holders}); cancel or delete them first"
    E707 = "[E707] needs a seat of license scope '{scope}' and no unexpired license grants it; an admin installs a license that grants it"
    E708 = "[E708] the public key of issuer '{issuer}' in settings is not an Ed25519 key: {why}"

    E801 = "[E801] a server needs at least one model: name them in 'models' or give a project whose labeling config names models"
    E802 = "[E802] a server holds at most {limit} models; this one names {count}: {models}"
    E803 = "[E803] model '{name}' is not a trained model in the catalog; trained models: {available}"
    E804 = "[E804] rule '{name}' does not exist; rules: {available}"
    E805 = "[E805] this server can never run on this cluster: {why}"
    E806 = "[E806] a server named '{name}' already exists (server {server_id})"
    E807 = "[E807] server {server_id} is {status}; pre-annotate with a server that is queued, deploying or running"
    E808 = "[E808] task {task_id} is not a task of project {project_id}"
    E809 = "[E809] the server was deleted before the job ended"
    E810 = "[E810] a rule named '{name}' already exists"
    E811 = ("[E811] the regex does not compile: {why} (rules run on RE2, in time linear in the text: no "
            "backreferences or lookaround)")
    E812 = "[E812] a {kind} rule needs {needs}"
    E813 = "[E813] deploying the server failed: {why}"
    E814 = "[E814] min replicas {replicas} is above max replicas {max_replicas}"
    E815 = "[E815] the pre-annotation process died: {why}"
    E816 = "[E816] pre-annotation failed: {why}"
    E817 = "[E817] model '{name}' is a Spark NLP model, which cannot be served here: {why}"
    E818 = ("[E818] a dictionary rule holds at most {limit} terms of at most {length} characters each; this one has "
            "{count} terms{longest}: split it into several rules")
    E819 = "[E819] the regex is {length} characters; a rule's pattern may have at most {limit}"
    E820 = "[E820] the node {node} serving this server left the cluster; deploying it again on another node"
    E821 = ("[E821] model '{name}' is not this project's: a project's members serve the models trained on it, imported "
            "by an admin or shared by an admin (PATCH /api/models/{name} {{\"shared\": true}})")
    E822 = "[E822] a server without a project is shared by every project: only an admin deploys one; give project_id"
    E823 = ("[E823] server {server_id} belongs to project {owner}, not to project {project_id}: pre-annotate with one of "
            "this project's servers or a shared one")
    E824 = ("[E824] project {project_id}'s labeling config has no <Relations>: 'entities_from: completion' proposes "
            "relations between the entities annotators marked; add <Relations> with <Relation> values first")
    E825 = ("[E825] server {server_id} holds no relation model ({models}): deploy one that does to propose relations "
            "for marked entities")
    E826 = "[E826] task {task_id} has no completion, so no marked entities to propose relations for"

    E901 = "[E901] file '{filename}' is not an image or a PDF annoray reads ({found}); upload PNG, JPEG, TIFF or PDF"
    E902 = "[E902] file '{filename}' says it is {declared} but its bytes are {found}"
    E903 = ("[E903] file '{filename}': page {page} is {size}, more than the limit of {limit} pixels "
            "(ANNORAY_DOCUMENTS__MAX_PIXELS); scale it down")
    E904 = "[E904] file '{filename}' has {pages} pages, more than the limit of {limit} (ANNORAY_DOCUMENTS__MAX_PAGES); split it"
    E905 = "[E905] file '{filename}' cannot be read: {why}"
    E906 = "[E906] the upload holds no file; send multipart/form-data with one or more parts named 'file'"
    E907 = "[E907] OCR failed: {why}"
    E908 = "[E908] OCR of this page failed {count} times, the most it is tried (ANNORAY_OCR__MAX_ATTEMPTS); last: {why}"
    E910 = "[E910] the upload carries {files} files, more than the {limit} one request may (ANNORAY_DOCUMENTS__MAX_FILES); send them in several"
    E911 = ("[E911] file '{filename}' renders to {pixels} pixels, more than the budget of {limit} per file "
            "(ANNORAY_DOCUMENTS__MAX_PIXELS_PER_FILE): split it or lower its resolution")
    E912 = ("[E912] the upload renders to {pixels} pixels, more than the budget of {limit} per request "
            "(ANNORAY_DOCUMENTS__MAX_PIXELS_PER_REQUEST): send its files in several requests")
    E909 = ("[E909] word {index} ('{text}'): its box {box} is not x0 <= x1, y0 <= y1 inside the page of "
            "{width} x {height} pixels")

    # Label Studio in front
    E1001 = ("[E1001] Label Studio sent no labeling config ('schema'): save the project's labeling interface in Label "
             "Studio, then connect the model again")
    E1002 = ("[E1002] Label Studio project {uid} is not linked to an annoray project: connect annoray as the project's "
             "model in Label Studio (it then calls /ls/setup), or run `annoray ls sync`")
    E1003 = ("[E1003] Label Studio project {uid} is linked to annoray project {project_id}, which this token's user does "
             "not own or manage: use a token of its owner or a manager")
    E1004 = "[E1004] task {index} is not a Label Studio task: it needs an integer 'id' and a 'data' object"
    E1005 = "[E1005] the annotation has no integer 'id'"
    E1006 = ("[E1006] annoray project {project_id} has no trained model yet: annotate tasks in Label Studio (active "
             "learning trains every N), or start a training (Label Studio's Start Training, or POST "
             "/api/projects/{project_id}/trainings)")
    E1007 = "[E1007] server {server_id} of project {project_id} is {status}; its predictions come once it runs: ask again shortly"
    E1008 = ("[E1008] {limit} prediction requests are already being answered by this API process "
             "(ANNORAY_LABEL_STUDIO__MAX_CONCURRENT_PREDICTIONS): ask again shortly")
    E1009 = ("[E1009] the Label Studio ML backend calls need an annoray token: in Label Studio's model settings choose "
             "Basic Authentication, any user name, and the token as the password")
    E1011 = "[E1011] server {server_id} did not answer ({why}): ask again shortly"
    E1012 = "[E1012] the annotation or review names no Label Studio user: it needs an integer 'completed_by' or 'created_by'"
    E1010 = "[E1010] Label Studio pre-annotates text projects only; project {project_id} labels images (Visual NER)"
    E1013 = ("[E1013] annoray calls no Label Studio at {url}: the operator lists those it may call in "
             "ANNORAY_LABEL_STUDIO__ALLOWED_URLS ({allowed})")
    E1014 = ("[E1014] '{username}' has linked {count} Label Studio projects, the most setup may link for one user "
             "(ANNORAY_LABEL_STUDIO__MAX_LINKS_PER_USER): delete unused ones, or ask the operator to raise it")
    E1015 = ("[E1015] webhook registration is off: annoray calls no Label Studio until the operator lists its address in "
             "ANNORAY_LABEL_STUDIO__ALLOWED_URLS; add the header Authorization to the project's webhook by hand")
    E1016 = ("[E1016] webhook registration is off: Label Studio's client is not installed (pip install "
             "'annoray[labelstudio]'); add the header Authorization to the project's webhook by hand")


@dataclass
class ErrorDetail:
    """One reason an input was refused, pointing at where to fix it."""

    message: str
    field: str | None = None
    line: int | None = None
    tag: str | None = None
    index: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class AnnorayError(Exception):
    """A refusal a user can act on: what is wrong, and where. Its kind is its class (the API maps each to an HTTP
    status in ``api/errors.py``)."""

    detail: str
    errors: list[ErrorDetail] = field(default_factory=list)

    def __str__(self) -> str:
        return self.detail


class InvalidInput(AnnorayError):
    """The input is wrong; ``errors`` say where."""


class NotFound(AnnorayError):
    def __init__(self, what: str, id: object):
        super().__init__(Errors.E404.format(what=what, id=id))


class Forbidden(AnnorayError):
    """The user is known but may not do this."""

    def __init__(self, detail: str):
        super().__init__(detail)


class Unauthorized(AnnorayError):
    def __init__(self, detail: str = Errors.E401) -> None:
        super().__init__(detail)


class Conflict(AnnorayError):
    """The request is valid but the current state does not allow it."""

    def __init__(self, detail: str, errors: list[ErrorDetail] | None = None):
        super().__init__(detail, errors or [])


class Unavailable(AnnorayError):
    """A part the request needs is not running."""


class TooMany(AnnorayError):
    """The caller holds as many of something as one may at once."""


def describe(exc: BaseException, limit: int = 300) -> str:
    """An exception as a job's error or a log line shows it: its type and the start of its message, on one line."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:limit]
