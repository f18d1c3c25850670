{#- Timeframes as dbt sees them: the same rules as crypto_assets.market.Timeframe. -#}

{% macro timeframe_seconds(name) -%}
    {%- set units = {"m": 60, "h": 3600, "d": 86400} -%}
    {%- set count = name[:-1] -%}
    {%- if not count.isdigit() or count | int == 0 or name[-1] not in units -%}
        {{ exceptions.raise_compiler_error("timeframe '" ~ name ~ "' is not like 15m, 1h or 1d") }}
    {%- endif -%}
    {{- return(count | int * units[name[-1]]) -}}
{%- endmacro %}

{#- A resampled model is enabled only when its timeframe is coarser than the base timeframe
    (var base_timeframe, i.e. CRYPTO_ASSETS_TIMEFRAME) and a whole multiple of it, so every
    bucket is made of whole base bars. Decided at parse time: the manifest lists only the
    enabled models, and Dagster's graph follows it. -#}
{% macro is_coarser_than_base(timeframe) -%}
    {%- set bucket = timeframe_seconds(timeframe) -%}
    {%- set base = timeframe_seconds(var("base_timeframe")) -%}
    {{- return(bucket > base and bucket % base == 0) -}}
{%- endmacro %}
