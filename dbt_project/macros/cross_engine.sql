{#- The few expressions DuckDB and PostgreSQL spell differently. Everything else is shared SQL. -#}

{#- Seconds since the epoch of a TIMESTAMPTZ: independent of the session time zone. -#}
{% macro epoch_seconds(expression) -%}
    {{- adapter.dispatch("epoch_seconds")(expression) -}}
{%- endmacro %}
{% macro default__epoch_seconds(expression) -%}
    extract(epoch from {{ expression }})
{%- endmacro %}
{% macro duckdb__epoch_seconds(expression) -%}
    epoch({{ expression }})
{%- endmacro %}

{#- Start of the UTC-aligned bucket of `seconds` holding a TIMESTAMPTZ: buckets are multiples
    of the bucket length since 1970-01-01 00:00 UTC, whatever the session time zone. -#}
{% macro bucket_start(expression, seconds) -%}
    {{- adapter.dispatch("bucket_start")(expression, seconds) -}}
{%- endmacro %}
{% macro default__bucket_start(expression, seconds) -%}
    to_timestamp(floor({{ epoch_seconds(expression) }} / {{ seconds }}) * {{ seconds }})
{%- endmacro %}
{#- PostgreSQL: date_bin from an absolute origin is the same instant arithmetic, without the
    per-row numeric math of extract(epoch ...) (about a fifth of a full rebuild). -#}
{% macro postgres__bucket_start(expression, seconds) -%}
    date_bin(interval '{{ seconds }} seconds', {{ expression }}, {{ utc_epoch() }})
{%- endmacro %}

{% macro utc_epoch() -%}
    cast('1970-01-01 00:00:00+00' as timestamptz)
{%- endmacro %}

{#- `value` of the row with the smallest / largest `order_by` in the group. -#}
{% macro first_by(value, order_by) -%}
    {{- adapter.dispatch("first_by")(value, order_by) -}}
{%- endmacro %}
{% macro default__first_by(value, order_by) -%}
    (array_agg({{ value }} order by {{ order_by }}))[1]
{%- endmacro %}
{% macro duckdb__first_by(value, order_by) -%}
    arg_min({{ value }}, {{ order_by }})
{%- endmacro %}

{% macro last_by(value, order_by) -%}
    {{- adapter.dispatch("last_by")(value, order_by) -}}
{%- endmacro %}
{% macro default__last_by(value, order_by) -%}
    (array_agg({{ value }} order by {{ order_by }} desc))[1]
{%- endmacro %}
{% macro duckdb__last_by(value, order_by) -%}
    arg_max({{ value }}, {{ order_by }})
{%- endmacro %}

{#- Inside a LATERAL subquery: keeps PostgreSQL from flattening it into a plain join, so each
    outer row runs its own primary-key range scan (ts bounds included) instead of one hash
    join over the whole table. DuckDB decorrelates lateral joins itself: nothing to add. -#}
{% macro lateral_fence() -%}
    {{- adapter.dispatch("lateral_fence")() -}}
{%- endmacro %}
{% macro default__lateral_fence() -%}
{%- endmacro %}
{% macro postgres__lateral_fence() -%}
    offset 0
{%- endmacro %}
