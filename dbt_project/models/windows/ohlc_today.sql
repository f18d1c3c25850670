{{ config(indexes=window_indexes()) }}
{{ recent_window(hours=24) }}
