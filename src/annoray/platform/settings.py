"""The one typed settings tree, read from ``ANNORAY_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from annoray.platform.resources import Resources


class ApiSettings(BaseModel):
    """The HTTP control plane."""

    host: str = Field("127.0.0.1", description="Interface `annoray up` binds to.")
    port: int = Field(8765, ge=1, le=65535, description="Port `annoray up` listens on.")
    max_body_bytes: int = Field(
        64 * 2**20, gt=0, description="Largest request body accepted; larger ones get 413."
    )
    max_page_size: int = Field(1000, gt=0, description="Largest page a paged list returns.")
    session_hours: float = Field(12, gt=0, description="How long a dashboard sign-in lasts.")
    allowed_hosts: list[str] = Field(
        ["*"], description="Host headers the API answers (others get 400), such as [\"annoray.example.org\"]; "
        "\"*.example.org\" allows subdomains. Set it in production: it stops DNS-rebinding and host-header attacks.")
    max_streams_per_user: int = Field(8, ge=1, description="Live streams (a followed training log, a page's progress "
                                      "events) one user may hold open at once; more are refused (429).")
    max_stream_seconds: float = Field(3600, gt=0, description="How long one stream stays open: a job that waits for "
                                      "ever does not hold it for ever (a browser's page reconnects; follow again).")
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1"], description="Addresses (or networks, `10.0.0.0/8`; `*` for any) of the "
        "TLS-terminating proxies whose X-Forwarded-Proto and X-Forwarded-For the API believes: behind one, the "
        "dashboard's session cookie is then marked Secure and the audit log records the client's address. Any other "
        "sender's forwarded headers are ignored.")
    cors_origins: list[str] = Field(
        [], description="Browser origins allowed to call the API from their own pages (CORS); none by default.")
    log_format: Literal["text", "json"] = Field("text", description="How annoray's API process writes its log lines: "
                                                "text, or one JSON object per line for a log pipeline.")
    threads: int = Field(24, ge=1, le=512, description="Requests an API process works on at once (its thread pool; "
                         "more wait their turn). Its database pool opens up to 2 x threads + 4 connections.")
    work_threads: int = Field(2, ge=1, le=64, description="Slow work (splitting uploads into pages, checking training "
                              "configs, importing models) an API process does at once, off its request threads; more "
                              "waits its turn.")
    work_wait_s: float = Field(1.0, ge=0, le=60, description="How long a request waits for its slow work: done by then, "
                               "it answers as ever; else 202 with the work to poll (GET /api/work/{id}).")
    work_lost_after_s: float = Field(3600, gt=0, description="Work still under way this long after it was asked for "
                                     "is reported failed (E516): the API process that ran it stopped.")

    @property
    def db_connections(self) -> int:
        """The most connections the API's pool opens: a request may hold two at once (its session and a read), so
        the pool never runs dry while every thread holds two."""
        return 2 * self.threads + 4


class LabelingConfigSettings(BaseModel):
    """Limits on the labeling config XML."""

    max_bytes: int = Field(256 * 2**10, gt=0, description="Largest labeling config accepted.")
    max_models: int = Field(5, gt=0, description="Most distinct models a config may reference.")


class DeploySettings(BaseModel):
    """The quality floor of deploys after training (a request with ``deploy: "force"`` passes it)."""

    min_held_out: int = Field(
        20, ge=0, description="A model scored on fewer held-out examples than this is too little judged to deploy.")
    floor: float = Field(
        0.1, ge=0, le=1, description="A model scoring below this on the project's deploy metric is not deployed, "
        "even as the first of its kind.")


class DatasetSettings(BaseModel):
    """How training data is built from completions."""

    min_examples_per_label: int = Field(
        40, ge=0, description="Fewer examples of a label than this is a warning in the job."
    )
    export_page_size: int = Field(
        500, gt=0, description="Tasks read per database round trip while streaming a selection."
    )


class ResourceSpec(BaseModel):
    """What one worker of a job needs on a single node."""

    cpus: float = Field(1, gt=0, description="CPU cores per worker.")
    memory_gb: float = Field(2, ge=0, description="Memory per worker, in GiB (0: no reservation).")
    gpus: float = Field(0, ge=0, description="GPUs per worker.")

    def resources(self) -> Resources:
        return Resources.of(self.model_dump())


def _default_training_resources() -> dict[str, ResourceSpec]:
    return {
        "ner": ResourceSpec(cpus=1, memory_gb=2),
        "assertion": ResourceSpec(cpus=1, memory_gb=2),
        "classification": ResourceSpec(cpus=1, memory_gb=2),
        "relation": ResourceSpec(cpus=1, memory_gb=2),
        "visual_ner": ResourceSpec(cpus=16, memory_gb=64),
        # Spark NLP: the driver (1 CPU / 2 GB, the Ray Train worker) and executors of the rest, on one node
        **{f"sparknlp.{kind}.v1": ResourceSpec(cpus=4, memory_gb=12) for kind in ("ner", "assertion", "classification")},
    }


class TrainingSettings(BaseModel):
    """How training jobs run on Ray Train."""

    resources: dict[str, ResourceSpec] = Field(
        default_factory=_default_training_resources,
        description="Resources of a training worker per model kind (Visual NER: 16 CPU / 64 GB, as the seeds require); "
        "a key naming an engine (e.g. `spacy.ner.v1`) overrides its kind's for that engine.",
    )
    max_failures: int = Field(
        2, ge=0, description="Failures a training survives: a killed worker restarted from its last checkpoint, or a run "
        "that could not start, lost its node or its runner, queued again to resume from it.")
    start_timeout_s: float = Field(
        60.0, gt=0, description="How long a run may wait for Ray to place its worker group before it counts as a failure.")
    poll_interval_s: float = Field(
        0.5, gt=0, le=10, description="How often a run's Train controller polls its workers: reports, epochs and the end "
        "of a run are seen at this pace (Ray Train's own default is 2 s, which makes a short epoch last 2 s).")
    allow_custom_code: bool = Field(
        False, description="Let admins upload Python code with a training config (it registers spaCy functions). The code "
        "runs with the rights of the API, of every training worker and of every replica that loads the model.")
    config_check_memory_mb: int = Field(
        2048, ge=256, description="Address space of the process that checks an uploaded training config by building it "
        "and training it one step (never the API's own): a config that needs more is refused.")
    config_check_timeout_s: float = Field(
        120.0, gt=0, description="How long that check may take before the config is refused.")
    storage_path: str | None = Field(
        None, description="Where Ray Train keeps checkpoints (shared by all nodes on a cluster); default under `home`."
    )

    def spec(self, kind: str, engine: str) -> ResourceSpec:
        """What one worker of this kind needs with this engine."""
        return self.resources.get(engine) or self.resources[kind]


def _default_server_resources() -> dict[str, ResourceSpec]:
    return {"text": ResourceSpec(cpus=1, memory_gb=2), "visual_ner": ResourceSpec(cpus=4, memory_gb=16),
            "sparknlp": ResourceSpec(cpus=1, memory_gb=4)}  # the replica's local Spark: a 2 GB JVM beside Python


class ServerSettings(BaseModel):
    """Pre-annotation servers on Ray Serve."""

    resources: dict[str, ResourceSpec] = Field(
        default_factory=_default_server_resources,
        description="Resources of one server replica: `text` for NER, assertion and classification models, "
        "`visual_ner` for servers holding a Visual NER model, `sparknlp` for servers holding a Spark NLP model.",
    )


class DocumentSettings(BaseModel):
    """Uploaded documents (images and PDFs) and their pages."""

    store: str | None = Field(
        None, description="Folder or pyarrow URI (s3://, gs://) of the file store holding the page images; default under `home`.")
    max_pixels: int = Field(
        60_000_000, gt=0, description="Largest page image, in pixels: a bigger one (a decompression bomb) is refused unread.")
    max_pages: int = Field(200, gt=0, description="Most pages one PDF or multi-page TIFF may have.")
    pdf_dpi: int = Field(150, ge=50, le=600, description="Resolution PDF pages are rendered at.")
    max_files: int = Field(50, gt=0, description="Most files one upload request may carry.")
    max_pixels_per_file: int = Field(
        500_000_000, gt=0, description="Most pixels one file's pages may render to, all pages together (a 200-page PDF "
        "of letter pages at 150 dpi is 420 million): measured from the file's headers before anything is drawn.")
    max_pixels_per_request: int = Field(
        1_000_000_000, gt=0, description="Most pixels one upload request's pages may render to, all files together.")


class OcrSettings(BaseModel):
    """OCR of document pages: Tesseract, one Ray task per page, spread over the cluster."""

    resources: ResourceSpec = Field(
        default_factory=lambda: ResourceSpec(cpus=1, memory_gb=1), description="What one page's OCR task needs.")
    max_in_flight: int = Field(8, gt=0, description="Most pages being OCR'd at once, cluster-wide.")
    max_attempts: int = Field(3, gt=0, description="Tries a page gets (a task lost with its node or the scheduler) "
                              "before its OCR fails.")
    upscale_below_px: int = Field(
        1500, ge=0, description="A page whose longer side has fewer pixels is scaled up to it (at most 3x) before OCR: "
        "Tesseract finds 1.1x to 1.2x the words of a 100 dpi scan read at 150 dpi, for 0.9x the pages/s "
        "(benchmarks/ocr_backends.py, benchmarks/visual_ner.py --ablation). 0: pages as uploaded.")
    page_segmentation: int = Field(
        11, ge=3, le=13, description="Tesseract's page segmentation mode (--psm, 3 to 13): 11 finds sparse text in any "
        "order, as forms have it (on EC-FUNSD upscaled: 1.05x the words of 3 at about 0.85x the pages/s, and Visual NER "
        "by region 0.52 entity F1 against 0.48 to 0.50; README, Benchmarks); 3 reads a page of text blocks (the default "
        "before), 4 a column, 6 one block.")


class LicenseSettings(BaseModel):
    """Who may issue licenses."""

    issuers: dict[str, str] = Field(
        default_factory=dict,
        description="Trusted license issuers: name → Ed25519 public key (PEM, or base64 of the 32 raw bytes). "
        "A license whose signature does not match its issuer's key is refused.",
    )


class SchedulerSettings(BaseModel):
    """The detached scheduler actor."""

    name: str = Field("annoray-scheduler", description="Name of the scheduler actor.")
    namespace: str = Field("annoray", description="Ray namespace of the scheduler and its jobs.")
    ray_address: str | None = Field(None, description="Ray cluster to join; none: start a local Ray.")
    call_timeout_s: float = Field(60.0, gt=0, le=3600, description="How long the API waits for the scheduler to answer "
                                  "a call (a cancel waits for its run to stop, up to 30 s) before it answers 503 E627.")
    autoscaler_node_types: list[dict[str, float]] = Field(
        default_factory=list,
        description="Worker node types the autoscaler can add ({cpus, memory_gb, gpus}); a job that fits one waits "
        "for the autoscaler instead of being refused. Empty: the cluster is what it is.",
    )
    cluster_config: Path | None = Field(
        None, description="Ray autoscaler config (cluster.yaml) whose worker node types the scheduler may ask for.",
    )
    aging_s: float = Field(600.0, ge=0, description="A waiting job's priority rises by one for every this many seconds it "
                           "has waited, so a stream of higher priorities never starves it (0: no aging).")
    max_priority: int = Field(100, ge=0, le=1000, description="The highest priority an owner or manager may give a "
                              "training (admins: any up to 1000); a request that gives none takes its project's.")
    preempt_servers: bool = Field(False, description="Let a job that waits for room preempt pre-annotation servers that "
                                  "borrow beyond their team's quota, as it preempts trainings (servers count at priority "
                                  "0): the server is queued again, its running pre-annotation jobs resume where they "
                                  "stopped once it runs. Off: servers are never preempted.")


class SparkNlpSettings(BaseModel):
    """The Spark NLP engine family: everything it needs is local (nothing is downloaded)."""

    jar: Path | None = Field(None, description="The Spark NLP assembly jar (ANNORAY_SPARKNLP__JAR); the engines train only with it.")
    graphs: Path | None = Field(None, description="Folder of NerDL TensorFlow graphs (blstm_<tags>_<dim>_<lstm>_<chars>.pb).")
    healthcare_jar: Path | None = Field(None, description="The licensed healthcare jar: assertion status (AssertionDL).")
    healthcare_license: str | None = Field(None, description="The healthcare library's licence key (SPARK_NLP_LICENSE).")


class LabelStudioSettings(BaseModel):
    """Label Studio in front: annoray as its ML backend (``/ls/``) and ``annoray ls sync``."""

    max_concurrent_predictions: int = Field(
        4, ge=1, le=256, description="Prediction requests from Label Studio an API process sends to servers at once; "
        "more wait up to `prediction_wait_s`, then are answered 503 to ask again.")
    prediction_wait_s: float = Field(30, ge=0, le=600, description="How long a prediction request waits for its turn.")
    prediction_timeout_s: float = Field(90, gt=0, le=3600, description="How long a server may take to answer one "
                                        "request (Label Studio itself gives up after its ML_TIMEOUT_PREDICT, 100 s).")
    annotator_priority: int = Field(0, ge=0, le=1000, description="Priority of the members made for Label Studio "
                                    "users on first sight (selection prefers the highest among submitted completions).")
    allowed_urls: list[str] = Field(
        default_factory=list, description="Base URLs of the Label Studio servers annoray may call (to put its "
        "credentials on their webhooks), e.g. `[\"https://labelstudio.example.org\"]`. Empty: annoray calls none and "
        "webhook registration is off; a setup naming another address is refused before any request is sent.")
    webhook_workers: int = Field(2, ge=1, le=16, description="Threads that put annoray's credentials on Label Studio "
                                 "webhooks, per API process.")
    max_links_per_user: int = Field(100, ge=1, description="Label Studio projects one user's setup calls may link "
                                    "(each may make an annoray project).")


class Settings(BaseSettings):
    """Everything annoray reads from its environment (prefix ``ANNORAY_``, nested with ``__``)."""

    model_config = SettingsConfigDict(env_prefix="ANNORAY_", env_nested_delimiter="__")

    home: Path = Field(
        default_factory=lambda: Path.home() / ".annoray",
        description="Folder holding the SQLite database, the local model store and admin.token.",
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the store; default: SQLite file under `home`."
    )
    model_store: str | None = Field(
        None, description="Folder or pyarrow URI (s3://, gs://) of the model store; default under `home`."
    )
    sparknlp: SparkNlpSettings = Field(default_factory=lambda: SparkNlpSettings())
    api: ApiSettings = Field(default_factory=ApiSettings)
    labeling_config: LabelingConfigSettings = Field(default_factory=LabelingConfigSettings)
    dataset: DatasetSettings = Field(default_factory=DatasetSettings)
    deploy: DeploySettings = Field(default_factory=DeploySettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    servers: ServerSettings = Field(default_factory=ServerSettings)
    documents: DocumentSettings = Field(default_factory=DocumentSettings)
    ocr: OcrSettings = Field(default_factory=OcrSettings)
    licenses: LicenseSettings = Field(default_factory=LicenseSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    label_studio: LabelStudioSettings = Field(default_factory=LabelStudioSettings)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'annoray.db'}"

    @property
    def resolved_model_store(self) -> str:
        return self.model_store or str(self.home / "models")

    @property
    def resolved_file_store(self) -> str:
        return self.documents.store or str(self.home / "files")

    @property
    def resolved_training_storage(self) -> str:
        return self.training.storage_path or str(self.home / "train_runs")

    @property
    def admin_token_path(self) -> Path:
        return self.home / "admin.token"
