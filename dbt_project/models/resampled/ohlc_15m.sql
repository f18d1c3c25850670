{{ config(enabled=is_coarser_than_base("15m"), indexes=bar_key_indexes()) }}
{{ resample("15m") }}
