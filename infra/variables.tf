# What users change. Defaults suit a single account with a handful of clusters.

variable "name_prefix" {
  description = "Prefix of every resource name (tables, function, roles, schedules)."
  type        = string
  default     = "teiji"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]{0,39}$", var.name_prefix))
    error_message = "name_prefix: letters, digits and hyphens, 1 to 40 characters, starting with a letter or digit."
  }
}

variable "clusters" {
  description = "Names of the ECS clusters whose services teiji may read and change, in every allowed account and region (TEIJI_ALLOWED_CLUSTERS). [\"*\"]: every cluster."
  type        = list(string)
  default     = ["*"]

  validation {
    condition     = length(var.clusters) > 0 && alltrue([for c in var.clusters : can(regex("^([A-Za-z0-9][A-Za-z0-9_-]{0,254}|\\*)$", c))])
    error_message = "clusters: give at least one ECS cluster name (letters, digits, hyphens, underscores) or \"*\"."
  }
}

variable "allowed_accounts" {
  description = "Other AWS accounts teiji may manage (TEIJI_ALLOWED_ACCOUNTS, with this account first). Empty: this account only. Each needs role_name's role (modules/target-account-role) and an ExternalId."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.allowed_accounts : can(regex("^[0-9]{12}$", a))])
    error_message = "allowed_accounts: 12-digit AWS account ids."
  }
}

variable "allowed_regions" {
  description = "Other regions teiji may manage (TEIJI_ALLOWED_REGIONS, with this region first). Empty: this region only. The role's ECS, Application Auto Scaling and ELB grants cover exactly these regions."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.allowed_regions : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", r))])
    error_message = "allowed_regions: AWS region names such as us-east-1."
  }
}

variable "organization_id" {
  description = "AWS Organizations id (o-...). When set, teiji may assume roles only in accounts of this organization (aws:ResourceOrgID)."
  type        = string
  default     = null

  validation {
    condition     = var.organization_id == null ? true : can(regex("^o-[a-z0-9]{10,32}$", var.organization_id))
    error_message = "organization_id: an AWS Organizations id such as o-a1b2c3d4e5."
  }
}

variable "max_desired" {
  description = "Growth cap (TEIJI_MAX_DESIRED): no document, override or restore may set a desired count or maximum above it."
  type        = number
  default     = 100

  validation {
    condition     = var.max_desired >= 1 && var.max_desired <= 100000 && floor(var.max_desired) == var.max_desired
    error_message = "max_desired: a whole number from 1 to 100000."
  }
}

variable "target_group_arns" {
  description = "ARNs or ARN patterns of the target groups teiji may register and deregister targets in (targets mode \"repair\"). Null: only target groups in the allowed regions tagged teiji:repair = true."
  type        = list(string)
  default     = null

  validation {
    condition     = var.target_group_arns == null ? true : alltrue([for arn in var.target_group_arns : can(regex("^arn:[a-z-]+:elasticloadbalancing:[a-z0-9-*]+:[0-9*]+:targetgroup/", arn))])
    error_message = "target_group_arns: each entry must be a target group ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID), wildcards allowed."
  }
}

# Lambda --------------------------------------------------------------------------------------

variable "lambda_zip_path" {
  description = "Path of the zip built by `make package`. Null means dist/teiji-lambda.zip in the repository that holds this module."
  type        = string
  default     = null
}

variable "runtime" {
  description = "Lambda runtime; must match the --python-version the zip was built for."
  type        = string
  default     = "python3.12"

  validation {
    condition     = contains(["python3.12", "python3.11"], var.runtime)
    error_message = "runtime: python3.12 or python3.11."
  }
}

variable "architecture" {
  description = "Lambda architecture; must match the --arch the zip was built for."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture: arm64 or x86_64."
  }
}

variable "timeout" {
  description = "Seconds one tick may run (the Lambda ceiling is 900). The tick stops starting services 30 seconds before it; its lease is renewed while it works. The default holds a 10,000-service transition over 3 accounts x 2 regions: ECS's UpdateService bucket alone needs (1,667 - 50) / 5 = 323 s per account and region (README, Sizing the Lambda)."
  type        = number
  default     = 600

  validation {
    condition     = var.timeout >= 30 && var.timeout <= 900
    error_message = "timeout: 30 to 900 seconds."
  }
}

variable "memory_size" {
  description = "Lambda memory in MB; the CPU share is memory / 1,769 MB. A tick's CPU time on Lambda is CPU seconds per changed service x services / that share: the default gives a 10,000-service transition about 0.58 vCPU (README, Sizing the Lambda)."
  type        = number
  default     = 1024

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size: 128 to 10240 MB."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch Logs keeps the tick reports."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days: one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "log_kms_key_arn" {
  description = "KMS key ARN to encrypt the log group with. Null keeps CloudWatch Logs' default encryption. The key policy must allow the logs service."
  type        = string
  default     = null
}

# Behaviour (environment of the function) ------------------------------------------------------

variable "default_timezone" {
  description = "IANA time zone of every schedule document that names no timezone (TEIJI_DEFAULT_TIMEZONE): its windows, cron and holidays are read in it. A document's own timezone always wins. Operators' terminals should set the same TEIJI_DEFAULT_TIMEZONE."
  type        = string
  default     = "Asia/Tokyo"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$", var.default_timezone))
    error_message = "default_timezone: an IANA time zone name such as Asia/Tokyo, UTC or America/New_York."
  }
}

variable "dry_run" {
  description = "When true every tick reports what it would change and changes nothing (TEIJI_DRY_RUN)."
  type        = bool
  default     = false
}

variable "log_level" {
  description = "Log level of the function (TEIJI_LOG_LEVEL)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level: DEBUG, INFO, WARNING or ERROR."
  }
}

variable "protected" {
  description = "cluster/service patterns teiji must never change at all (no stop, start or growth, overrides included), whatever a document says (TEIJI_PROTECTED), e.g. [\"prod-*/*\"]."
  type        = list(string)
  default     = []
}

variable "max_override" {
  description = "Longest override an operator may set (TEIJI_MAX_OVERRIDE), written like 90m, 12h, 7d or 1d12h."
  type        = string
  default     = "7d"

  validation {
    condition     = can(regex("^(\\d+d)?(\\d+h)?(\\d+m)?$", var.max_override)) && var.max_override != ""
    error_message = "max_override: a duration such as 90m, 12h, 7d or 1d12h."
  }
}

variable "concurrency" {
  description = "Services worked at once within one account and region (TEIJI_CONCURRENCY); the account/region groups run in parallel. API calls are paced to ECS's documented rates whatever this is."
  type        = number
  default     = 8

  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 64
    error_message = "concurrency: a whole number from 1 to 64."
  }
}

variable "target_check_interval" {
  description = "Seconds after which the load-balancer targets of a service that did not change are checked again (TEIJI_TARGET_CHECK_INTERVAL). A service whose deployment, task sets, counts or load balancers changed, or whose last check was not ok, is checked at the next tick anyway."
  type        = number
  default     = 3600

  validation {
    condition     = var.target_check_interval >= 60 && var.target_check_interval <= 604800 && floor(var.target_check_interval) == var.target_check_interval
    error_message = "target_check_interval: whole seconds from 60 to 604800 (a week)."
  }
}

variable "role_name" {
  description = "Name of the role teiji assumes in each of allowed_accounts (TEIJI_ROLE_NAME). The execution role may assume exactly that role in exactly those accounts."
  type        = string
  default     = null

  validation {
    condition     = var.role_name == null ? true : can(regex("^[\\w+=,.@-]{1,64}$", var.role_name))
    error_message = "role_name: an IAM role name (1 to 64 of letters, digits and +=,.@_-), not an ARN."
  }
}

variable "external_ids" {
  description = "ExternalId of the role in each other account, by account id. Each is written to the SecureString <external_id_parameter_path>/<account> (and so sits in the Terraform state); leave it empty to create the parameters yourself."
  type        = map(string)
  default     = {}
  sensitive   = true
}

variable "external_id_parameter_path" {
  description = "SSM path of the ExternalId parameters (TEIJI_EXTERNAL_ID_PARAMETER). Null: /<name_prefix>/external-id."
  type        = string
  default     = null

  validation {
    condition     = var.external_id_parameter_path == null ? true : can(regex("^(/[A-Za-z0-9_.-]+)+$", var.external_id_parameter_path))
    error_message = "external_id_parameter_path: an SSM path such as /teiji/external-id (no trailing slash)."
  }
}

variable "external_id_kms_key_arn" {
  description = "Customer managed KMS key for the ExternalId parameters. Null: the AWS managed key aws/ssm."
  type        = string
  default     = null
}

# Scheduling -------------------------------------------------------------------------------------

variable "shards" {
  description = "Number of schedules, each ticking a share of the services ({\"shard\": i, \"shards\": n}) under its own lease; also the function's reserved concurrency and TEIJI_SHARDS."
  type        = number
  default     = 1

  validation {
    condition     = var.shards >= 1 && var.shards <= 50 && floor(var.shards) == var.shards
    error_message = "shards: a whole number from 1 to 50."
  }
}

variable "schedule_expression_timezone" {
  description = "Time zone of the tick schedule. The tick runs at every quarter hour in every zone, so this only matters for reading the console; documents carry their own time zones."
  type        = string
  default     = "UTC"
}

variable "schedule_enabled" {
  description = "False pauses the ticks (the schedules stay, in state DISABLED): the first step of a rollback."
  type        = bool
  default     = true
}

# Alarm --------------------------------------------------------------------------------------------

# Events -------------------------------------------------------------------------------------------

variable "event_bus_name" {
  description = "EventBridge bus the tick sends its events to (Service Stopped, Service Started, Service Resized, Service Failed, Document Invalid, Baseline Amended, Tick Failed; source teiji): a bus name in this account and region or its ARN. Empty: no events (and no events:PutEvents permission)."
  type        = string
  default     = "default"

  validation {
    condition     = can(regex("^$|^[A-Za-z0-9._/-]{1,256}$|^arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/[A-Za-z0-9._/-]{1,256}$", var.event_bus_name))
    error_message = "event_bus_name must be a bus name (letters, digits and ._-/), a bus ARN, or empty."
  }
}

variable "notify_emails" {
  description = "Addresses subscribed (by email, each confirms once) to an SNS topic that receives teiji's events of notify_detail_types. Empty, and create_notification_topic false: no topic."
  type        = list(string)
  default     = []
}

variable "create_notification_topic" {
  description = "Create the SNS topic for teiji's events (and the rule that sends them) even without notify_emails, e.g. to connect AWS Chatbot to Slack or Microsoft Teams (the topic ARN is an output)."
  type        = bool
  default     = false
}

variable "notify_detail_types" {
  description = "Which of teiji's events go to the notification topic."
  type        = list(string)
  default     = ["Service Stopped", "Service Started", "Service Resized", "Service Failed", "Document Invalid", "Baseline Amended", "Tick Failed"]

  validation {
    condition = length(var.notify_detail_types) > 0 && alltrue([
      for t in var.notify_detail_types : contains(["Service Stopped", "Service Started", "Service Resized", "Service Failed", "Document Invalid", "Baseline Amended", "Tick Failed"], t)
    ])
    error_message = "notify_detail_types lists teiji's detail types: Service Stopped, Service Started, Service Resized, Service Failed, Document Invalid, Baseline Amended, Tick Failed."
  }
}

variable "notification_topic_kms_key_id" {
  description = "KMS key for the notification topic. Its key policy must let events.amazonaws.com use it (kms:GenerateDataKey, kms:Decrypt), or EventBridge cannot deliver."
  type        = string
  default     = null
}

variable "alarm_sns_topic_arn" {
  description = "Existing SNS topic to notify when a tick fails. Null: no external topic."
  type        = string
  default     = null
}

variable "create_alarm_topic" {
  description = "Create an SNS topic for the failure alarm (its ARN is an output; subscribe to it)."
  type        = bool
  default     = false
}

variable "alarm_topic_kms_key_id" {
  description = "KMS key for the created alarm topic. Its key policy must let cloudwatch.amazonaws.com use it, or alarms cannot publish."
  type        = string
  default     = null
}

# Tables -------------------------------------------------------------------------------------------

variable "table_kms_key_arn" {
  description = "Customer managed KMS key for both tables. Null uses the AWS managed key for DynamoDB."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Protect both tables against deletion (turn off before `terraform destroy`)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

# Edits that take effect in seconds ----------------------------------------------------------------

variable "stream_edits" {
  description = "Converge a service within seconds of an edit of its documents: a DynamoDB stream on the config table and the edits function behind it (infra/streams.tf). False: edits wait for the next 15-minute tick, as before."
  type        = bool
  default     = true
}

# Metrics and the dashboard -------------------------------------------------------------------------

variable "metrics_per_service" {
  description = "Also write the savings metrics (StoppedTaskHours, EstimatedSavingsUSD) per service, with a Service dimension: one custom metric series per service and metric, each billed by CloudWatch. Off: one series per deployment."
  type        = bool
  default     = false
}

variable "create_dashboard" {
  description = "Create a CloudWatch dashboard of the tick's metrics: services by state, changes, failures, throttles and the savings this month."
  type        = bool
  default     = true
}

# Fan-out (infra/fanout.tf) ---------------------------------------------------------------------
variable "fanout" {
  description = "Fan-out for fleets past one invocation: the scheduled tick hands one work item per (account, region) to an SQS queue and a worker function converges each under that scope's own lease; the edits function (stream_edits) takes the same scopes' leases. False (the default, for small fleets): one tick converges every service. Needs shards = 1."
  type        = bool
  default     = false
}

variable "fanout_max_concurrency" {
  description = "Fan-out workers at once (the event source mapping's maximum_concurrency), each with one account and region's whole ECS request bucket to itself."
  type        = number
  default     = 50

  validation {
    condition     = var.fanout_max_concurrency >= 2 && var.fanout_max_concurrency <= 1000 && floor(var.fanout_max_concurrency) == var.fanout_max_concurrency
    error_message = "fanout_max_concurrency: a whole number from 2 to 1000 (the event source mapping's limits)."
  }
}

variable "fanout_worker_timeout" {
  description = "Seconds one fan-out worker may take for its scope. The work queue's visibility timeout is twice this, so that a first try and one retry end within the tick's 15 minutes."
  type        = number
  default     = 180

  validation {
    condition     = var.fanout_worker_timeout >= 60 && var.fanout_worker_timeout <= 300 && floor(var.fanout_worker_timeout) == var.fanout_worker_timeout
    error_message = "fanout_worker_timeout: whole seconds from 60 to 300 (a try, the visibility timeout of twice that and a retry fit in 900 s)."
  }
}

variable "fanout_worker_concurrency" {
  description = "Services one fan-out worker works at once (its TEIJI_CONCURRENCY): a worker has one account and region, so all of its threads serve that one group. API calls are paced to the documented rates whatever this is."
  type        = number
  default     = 32

  validation {
    condition     = var.fanout_worker_concurrency >= 1 && var.fanout_worker_concurrency <= 64 && floor(var.fanout_worker_concurrency) == var.fanout_worker_concurrency
    error_message = "fanout_worker_concurrency: a whole number from 1 to 64."
  }
}

# Wake on request (infra/wake.tf) ----------------------------------------------------------------
variable "wake_load_balancers" {
  description = "Application Load Balancers, in this account and region, whose listener rules may wake a sleeping service (a schedule's wake: {on_request: true}): each gets a Lambda target group of the wake function, and while a wake-enabled service sleeps the rules forwarding to it forward there instead (TEIJI_WAKE_TARGET_GROUPS). Empty (the default): wake on request is off."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.wake_load_balancers : can(regex("^arn:aws[a-z-]*:elasticloadbalancing:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:loadbalancer/app/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}$", arn))])
    error_message = "wake_load_balancers: each entry must be an Application Load Balancer ARN such as arn:aws:elasticloadbalancing:ap-northeast-1:111111111111:loadbalancer/app/stg/0123456789abcdef (a Network or Gateway Load Balancer cannot forward to a Lambda function)."
  }
  validation {
    condition     = length(distinct(var.wake_load_balancers)) == length(var.wake_load_balancers)
    error_message = "wake_load_balancers: name each load balancer once (each gets one wake target group)."
  }
}

variable "wake_keep_minutes" {
  description = "How often (in minutes) the wake function reads the load balancers' RequestCount of the services it woke, and extends each wake to keep_for after the latest request (at most TEIJI_MAX_OVERRIDE from its start): once a woken service's rules are restored, its requests no longer pass the wake function. 0 turns this off (a wake then ends keep_for after the last request the function answered). Only with wake_load_balancers."
  type        = number
  default     = 5

  validation {
    condition     = var.wake_keep_minutes >= 0 && var.wake_keep_minutes <= 60 && floor(var.wake_keep_minutes) == var.wake_keep_minutes
    error_message = "wake_keep_minutes: a whole number of minutes from 1 to 60, or 0 to turn the extension off."
  }
}

variable "wake_max_concurrency" {
  description = "Reserved concurrency of the wake function: at most this many requests through a sleeping service's rules are answered at once; more are throttled. One request is enough to wake a service."
  type        = number
  default     = 10

  validation {
    condition     = var.wake_max_concurrency >= 1 && var.wake_max_concurrency <= 100 && floor(var.wake_max_concurrency) == var.wake_max_concurrency
    error_message = "wake_max_concurrency: a whole number from 1 to 100."
  }
}
