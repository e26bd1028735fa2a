module github.com/techlist/client-app

go 1.26.0

require (
	github.com/chromedp/chromedp v0.23.0
	github.com/techlist/techlist v0.0.0
)

require (
	github.com/chromedp/cdproto v0.159.0 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	github.com/joho/godotenv v1.5.1 // indirect
)

replace github.com/techlist/techlist => ../techlist
